"""``dentseg-gui``: start the desktop application.

    dentseg-gui [FILES or FOLDERS or a VOLUME...] [--demo] [--spacing MM] [--screenshot OUT.png]

``--demo`` opens the bundled sample case (copied to the user data folder, so
the install stays untouched) with its prediction shown. ``--screenshot``
renders the main window at 1280x800 once everything is loaded and predicted,
writes the PNG and exits (headless: it switches to the offscreen platform when
there is no display, and shows no dialogs).

Heavy modules (torch) are imported only when a prediction or training starts,
so the window opens fast and a missing torch or model gives a message, not a
crash. Every uncaught exception is logged and shown as a message box.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

log = logging.getLogger("dentseg.gui.app")

DEMO_SEED = 0
SCREENSHOT_SIZE = (1280, 800)


def build_parser() -> argparse.ArgumentParser:
    from ..cli import _spacing
    p = argparse.ArgumentParser(prog="dentseg-gui", description="DentSeg desktop application")
    p.add_argument("files", nargs="*", type=Path,
                   help="images, annotation files or folders to open; a CBCT volume (DICOM series folder, "
                        "NIfTI, NRRD, enhanced DICOM) opens in the volume view")
    p.add_argument("--demo", action="store_true", help="open the bundled sample case with its prediction")
    p.add_argument("--spacing", type=_spacing, default=None,
                   help="pixel spacing in mm (ROW[,COL]) for images that carry none")
    p.add_argument("--screenshot", type=Path, default=None, metavar="OUT.png",
                   help="render the window at 1280x800 after loading, save it and exit")
    p.add_argument("--timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    return p


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# --------------------------------------------------------------------------- demo


def prepare_demo_case() -> tuple[Path, bool, str]:
    """Copy the bundled demo case into ``user_data_dir()/demo``; return
    (image path, whether the window must run the prediction, a note for the user).

    When the bundled demo is absent, a phantom (``core.phantom``, style "demo")
    is generated there instead (its spacing kept in an empty annotation file) and
    predicted with the bundled model; if the model is missing too, the phantom's
    ground truth is shown and the note says so.
    """
    from ..core.annotation import annotation_path_for, save_annotation
    from ..resources import bundled_model_path, demo_image_path, user_data_dir

    dest_dir = user_data_dir() / "demo"
    dest_dir.mkdir(parents=True, exist_ok=True)
    src = demo_image_path()
    have_model = bundled_model_path().is_file()
    if src.is_file():
        dest = dest_dir / src.name
        src_ann = annotation_path_for(src)
        dest_ann = annotation_path_for(dest)
        if not dest.exists():
            shutil.copy2(src, dest)
        if src_ann.is_file() and not dest_ann.exists():
            shutil.copy2(src_ann, dest_ann)
        if dest_ann.exists():
            return dest, False, ""
        return dest, have_model, "" if have_model else "The bundled model is missing: no prediction to show."

    import cv2
    import numpy as np
    from ..core.atomic import atomic_write_bytes
    from ..core.phantom import generate_phantom

    from ..core.annotation import Annotation, load_annotation

    dest = dest_dir / "demo_case.png"
    dest_ann = annotation_path_for(dest)
    if not dest.exists():
        case = generate_phantom(DEMO_SEED, "demo")
        px = case.image.pixels
        arr = px.astype(np.uint8) if case.image.bit_depth == 8 else px.astype(np.uint16)
        ok, buf = cv2.imencode(".png", arr)
        if not ok:
            raise OSError("could not encode the demo image")
        atomic_write_bytes(dest, buf.tobytes())
        if have_model:  # a PNG carries no spacing: the annotation file keeps it, regions come from the model
            ann = Annotation(dest.name, case.annotation.width, case.annotation.height,
                             case.annotation.pixel_spacing_mm)
        else:
            ann = case.annotation.copy()
            ann.image_path = dest.name
        save_annotation(ann, dest_ann)
    ann = load_annotation(dest_ann) if dest_ann.exists() else None
    if ann is not None and ann.regions:
        truth = "generator" in ann.provenance and not have_model
        return dest, False, ("The bundled model is missing: the demo shows the phantom's ground truth "
                             "instead of a prediction." if truth else "")
    if have_model:
        return dest, True, ""
    return dest, False, ("The bundled model is missing: the demo shows no prediction. "
                         "Choose a model in Model › Choose model, or train one.")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()   # training runs in a spawned process (a no-op unless frozen)
    args = build_parser().parse_args(argv)
    if args.screenshot is not None and not _has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from . import messages
    from .main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("DentSeg")
    app.setApplicationName("DentSeg")
    headless = args.screenshot is not None
    messages.setup_logging()
    from .autosave import remove_stale_temp_files_of_app
    remove_stale_temp_files_of_app()   # what a kill during a save left in our own folders
    window: MainWindow | None = None
    messages.install_excepthook(lambda: window)

    window = MainWindow(spacing=args.spacing, interactive=not headless, restore_layout=not headless,
                        autosave=not headless)
    if headless:
        window.resize(*SCREENSHOT_SIZE)
    window.show()

    paths = list(args.files)
    note = ""
    if args.demo:
        try:
            demo, needs_predict, note = prepare_demo_case()
        except Exception as exc:  # noqa: BLE001 - a broken demo must not stop the app
            messages.show_exception(window, exc, None, "Demo unavailable")
        else:
            paths.insert(0, demo)
            window.prediction.predict_when_loaded = needs_predict

    recovered = False
    if not headless:
        recovered = window.offer_recovery()
    from .volume_controller import is_volume_path
    volumes = [p for p in paths if p.exists() and is_volume_path(p)]
    paths = [p for p in paths if p not in volumes]
    if volumes:               # a CBCT scan opens in the volume view (the first one, if several)
        window.open_volume(volumes[0])
    if paths:
        if recovered:
            window.session.add_paths(paths)
        elif not window.open_paths(paths):
            window.prediction.predict_when_loaded = False
    if note:  # once, after the case has loaded, so "Opened ..." does not cover it
        def show_note(*_):
            window.caseLoaded.disconnect(show_note)
            window.statusBar().showMessage(note, 15000)
        window.caseLoaded.connect(show_note)

    if headless:
        return _screenshot_and_exit(app, window, args.screenshot, args.timeout)
    return app.exec()


def _screenshot_and_exit(app, window, out: Path, timeout_s: float) -> int:
    """Wait (processing events) until loading and prediction finished, grab, save, exit."""
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not window.is_idle() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)
    timed_out = not window.is_idle()
    window.resize(*SCREENSHOT_SIZE)
    for _ in range(5):  # let layouts, docks and the view settle
        QApplication.processEvents()
        time.sleep(0.02)
    if window.document is not None:
        window.canvas.fit()
        QApplication.processEvents()
    pix = window.grab()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = pix.save(str(out), "PNG")
    code = 0 if ok and not timed_out else 1
    if not ok:
        print(f"dentseg-gui: error: could not write {out}", file=sys.stderr)
    elif timed_out:
        print(f"dentseg-gui: warning: still busy after {timeout_s:.0f} s; wrote {out} anyway",
              file=sys.stderr)
    else:
        print(f"wrote {out} ({pix.width()}x{pix.height()})")
    window.shutdown()
    window.hide()
    app.processEvents()
    return code


if __name__ == "__main__":
    sys.exit(main())
