"""GUI speed and memory (issue 14): overlay edit + repaint times, RSS over repeated opens.

Run through ``bench_speed.py edits`` / ``bench_speed.py memory`` (or directly:
``python benchmarks/bench_gui_speed.py edits``). Qt runs offscreen; a repaint is
``viewport().repaint()`` (synchronous: the time includes painting every item).

edits: on the demo case (384 x 384, its annotation), 60 landmark-drag steps of the
apex and 60 palatal-boundary handle-drag steps (exactly what the palatal tool commits
per throttled move: ``replace_palatal_boundary`` + ``set_region`` with a merge key),
each followed by a repaint; then the boundary drag again on the PAB outline densified
2x and 4x (vertex count grows, time should not).

memory: one window opens the 4096 x 5120 cephalogram and the demo case alternately,
10 times each; RSS after each cephalogram open, and the live large numpy arrays.

folder: a folder of 1,000 cases (copies of one phantom with its annotation) opened in the
window while a 5 ms timer runs on the GUI thread: the time open_folder takes to return,
the longest gap between timer ticks (the longest the window was held), and the time
until every case is listed and the first one is open.

open: the 4096 x 5120 cephalogram opened in the window with the same timer.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _app():
    from PySide6 import QtWidgets
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _stats(ms: list[float]) -> str:
    return f"median {statistics.median(ms):.1f} ms, p95 {sorted(ms)[int(0.95 * (len(ms) - 1))]:.1f}, max {max(ms):.1f} (n={len(ms)})"


def bench_edits(reps: int = 1) -> None:
    import numpy as np
    from shapely.geometry import MultiPolygon, Polygon

    from dentseg_gui.core.palatal_boundary import replace_palatal_boundary
    from dentseg_gui.gui.canvas import ImageCanvas
    from dentseg_gui.gui.cases import load_case
    from dentseg_gui.gui.document import CaseDocument
    from dentseg_gui.resources import demo_image_path

    app = _app()
    canvas = ImageCanvas()
    canvas.resize(1000, 760)
    canvas.show()
    app.processEvents()
    loaded = load_case(demo_image_path())

    def fresh(densify: int = 1) -> CaseDocument:
        ann = loaded.annotation
        if densify > 1:
            pab = ann.region("PAB")
            polys = []
            for p in pab.geoms:
                c = np.asarray(p.exterior.coords)
                t = np.linspace(0, len(c) - 1, (len(c) - 1) * densify + 1)
                dense = np.stack([np.interp(t, np.arange(len(c)), c[:, 0]),
                                  np.interp(t, np.arange(len(c)), c[:, 1])], axis=1)
                polys.append(Polygon(dense, [h.coords for h in p.interiors]))
            ann = ann.copy() if hasattr(ann, "copy") else ann
            ann.regions = dict(ann.regions, PAB=MultiPolygon(polys))
        doc = CaseDocument(loaded.image, ann, loaded.image_path, loaded.annotation_path)
        canvas.set_document(doc)
        app.processEvents()
        canvas.view.viewport().repaint()
        return doc

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        canvas.view.viewport().repaint()
        return 1000 * (time.perf_counter() - t)

    doc = fresh()
    n_items = len(canvas.view.scene().items())
    apex = np.array(doc.landmark("apex"))
    lm_ms = []
    for _ in range(reps):
        for i in range(60):
            p = apex + [3 * np.sin(i / 6), 2 * np.cos(i / 7)]
            lm_ms.append(timed(lambda: doc.set_landmark("apex", tuple(p), merge_key="bench-apex")))
    print(f"landmark drag + repaint      {_stats(lm_ms)}")
    for densify in (1, 2, 4):
        doc = fresh(densify)
        tool = canvas.tools["palatal_edit"]
        canvas.set_tool("palatal_edit")
        app.processEvents()
        if tool.curve is None:
            print(f"boundary drag: no palatal curve ({tool.reason})")
            return
        verts = sum(len(p.exterior.coords) for p in doc.region("PAB").geoms)
        k = len(tool.handles) // 2
        pab0, curve0 = doc.region("PAB"), tool.curve.copy()
        tool._drag = (k, None, pab0, curve0, tool.handles.copy(), "bench-drag")  # as press() does
        ms = []
        for _ in range(reps):
            for i in range(60):
                delta = np.array([4 * np.sin(i / 8), 1.5 * np.cos(i / 9)])
                new_curve = tool.deformed_curve(k, delta)
                ms.append(timed(lambda: doc.set_region("PAB", replace_palatal_boundary(pab0, curve0, new_curve),
                                                        "Palatal boundary edit", merge_key="bench-drag")))
        tool._drag = None
        canvas.set_tool("navigate")
        print(f"boundary drag + repaint x{densify} ({verts} vertices) {_stats(ms)}")
    print(f"graphics items in the scene: {n_items} at start, {len(canvas.view.scene().items())} after the edits")


def bench_memory(reps: int = 10) -> None:
    import numpy as np
    from PySide6.QtCore import QSettings

    from dentseg_gui.gui.main_window import MainWindow
    from dentseg_gui.resources import demo_image_path

    import tempfile
    user = tempfile.mkdtemp(prefix="dentseg_mem_")
    os.environ["DENTSEG_USER_DATA"] = user
    os.environ["XDG_CONFIG_HOME"] = os.path.join(user, "config")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    app = _app()
    ceph = REPO.parent / "shared" / "data" / "real" / "cephalogram" / "B1893L12.jpg"
    win = MainWindow()
    win.resize(1200, 800)
    win.show()
    loaded = []
    win.caseLoaded.connect(lambda doc: loaded.append(doc.image_path.name))

    def wait_open(row: int) -> None:
        n = len(loaded)
        assert win.open_case(row, ask_save=False)
        t = time.time()
        while len(loaded) == n:
            app.processEvents()
            time.sleep(0.005)
            if time.time() - t > 60:
                raise SystemExit("timed out opening a case")
        for _ in range(5):
            app.processEvents()

    win.open_paths([ceph, demo_image_path()])
    while not loaded:
        app.processEvents()
        time.sleep(0.01)
    rss = []
    for i in range(reps):
        if i:
            wait_open(0)
        gc.collect()
        app.processEvents()
        rss.append(_rss_mb())
        wait_open(1)
    gc.collect()
    big = [o for o in gc.get_objects() if isinstance(o, np.ndarray) and o.nbytes > 4 << 20]
    print("RSS after each cephalogram open (MB): " + ", ".join(f"{v:.0f}" for v in rss))
    print(f"growth from the 1st to the {reps}th open: {rss[-1] - rss[0]:+.0f} MB; "
          f"live numpy arrays > 4 MB with the demo case open: {len(big)}")
    win.close()


def _window_with_ticks():
    import tempfile

    from PySide6.QtCore import QTimer

    from dentseg_gui.gui import messages
    from dentseg_gui.gui.main_window import MainWindow
    user = tempfile.mkdtemp(prefix="dentseg_folder_")
    os.environ["DENTSEG_USER_DATA"] = user
    os.environ["XDG_CONFIG_HOME"] = os.path.join(user, "config")
    app = _app()
    messages.set_interactive(False)
    win = MainWindow(interactive=False, restore_layout=False, autosave=False)
    win.resize(1200, 800)
    win.show()
    t_end = time.perf_counter() + 0.5          # the window's first layout and paint happen before the test
    while time.perf_counter() < t_end:
        app.processEvents()
        time.sleep(0.01)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    return app, win, ticks, timer


def _run_until_idle(app, win, ticks, timer, start) -> tuple[float, float, float]:
    timer.start(5)
    t0 = time.perf_counter()
    start()
    returned = time.perf_counter() - t0
    while not win.is_idle():
        app.processEvents()
        time.sleep(0.002)
    total = time.perf_counter() - t0
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    return returned, max(gaps) if gaps else 0.0, total


def bench_folder(n: int = 1000) -> None:
    import tempfile

    from dentseg_gui.core.annotation import annotation_path_for
    from dentseg_gui.core.phantom import write_phantom_set
    d = Path(tempfile.mkdtemp(prefix="dentseg_cases_"))
    (src,) = write_phantom_set(d / "src", 1, seed=3)
    data, ann = src.read_bytes(), annotation_path_for(src).read_text(encoding="utf-8")
    big = d / "big"
    big.mkdir()
    for i in range(n):
        (big / f"c{i:04d}{src.suffix}").write_bytes(data)
        (big / f"c{i:04d}.dentseg.json").write_text(ann.replace(src.name, f"c{i:04d}{src.suffix}"), encoding="utf-8")
    app, win, ticks, timer = _window_with_ticks()
    returned, gap, total = _run_until_idle(app, win, ticks, timer, lambda: win.open_folder(big))
    assert len(win.cases.entries) == n and win.document is not None
    print(f"folder of {n} cases: open_folder returned in {1000 * returned:.0f} ms; the GUI thread was "
          f"never held longer than {1000 * gap:.0f} ms; all listed and the first case open after {total:.2f} s")
    win.shutdown()


def bench_open_big() -> None:
    ceph = REPO.parent / "shared" / "data" / "real" / "cephalogram" / "B1893L12.jpg"
    app, win, ticks, timer = _window_with_ticks()
    returned, gap, total = _run_until_idle(app, win, ticks, timer, lambda: win.open_paths([ceph]))
    print(f"4096x5120 cephalogram: open returned in {1000 * returned:.0f} ms; the GUI thread was never held "
          f"longer than {1000 * gap:.0f} ms; shown after {total:.2f} s")
    win.shutdown()


def main(what: str, reps: int = 1) -> int:
    if what == "folder":
        bench_folder()
        return 0
    if what == "open":
        bench_open_big()
        return 0
    if what == "edits":
        bench_edits(max(1, reps))
    elif what == "memory":
        bench_memory(10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "edits"))
