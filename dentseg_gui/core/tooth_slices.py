"""``dentseg slice``: from a volume to one DICOM slice per tooth and parasagittal offset.

The pipeline: load the volume (``volume_io``), find the teeth and their axes
(a detector: by default ``core.tooth_detection.detect_incisors``, imported
only when needed, and replaceable so the pipeline is tested with a detector
whose answer is known), then for each tooth and offset make the measurement
plane (``plane_for_tooth``: apex up, labial left), resample it (``reslice``)
and write it as DICOM + ``.dentseg.json`` (``slice_dicom``).

Names: ``<volume-stem>_<tooth>.dcm`` for the central plane and
``<volume-stem>_<tooth>_<offset>mm.dcm`` for an offset (signed, + toward
distal), e.g. ``scan_11_+1mm.dcm``, ``scan_21_-0.5mm.dcm``.

Every step reports ``progress(done, total, text)`` and honours
``should_stop()``, so the GUI can run it in a worker; the detector gets both.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .volume import Plane, ToothAxis, Volume, VolumeError, plane_for_tooth
from .volume_io.common import ProgressFn, StopFn, VolumeCancelled

Detector = Callable[..., list[ToothAxis]]

#: side of the square measurement slice (mm): an incisor is ~23 mm long, plus bone around it
DEFAULT_SIZE_MM = (48.0, 48.0)
FDI_TEETH = tuple(q * 10 + n for q in (1, 2, 3, 4) for n in range(1, 9))


@dataclass
class WrittenSlice:
    tooth: int
    offset_mm: float
    dicom: Path
    annotation: Path
    plane: Plane


@dataclass
class SliceRun:
    slices: list[WrittenSlice] = field(default_factory=list)
    teeth: list[ToothAxis] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_detector() -> Detector:
    try:
        from .tooth_detection import detect_incisors
    except ImportError:
        raise VolumeError("tooth detection is not available in this DentSeg build: give the tooth's position "
                          "with --at X,Y,Z, or update DentSeg") from None
    return detect_incisors


def slice_name(stem: str, tooth: int, offset_mm: float) -> str:
    if offset_mm == 0:
        return f"{stem}_{tooth}.dcm"
    return f"{stem}_{tooth}_{offset_mm:+g}mm.dcm"


def _stage(progress: ProgressFn | None, lo: int, hi: int) -> ProgressFn | None:
    """Map a stage's own (done, total) onto lo..hi of 100."""
    if progress is None:
        return None

    def report(done: int, total: int, text: str = "") -> None:
        frac = min(1.0, done / total) if total else 1.0
        progress(int(lo + (hi - lo) * frac), 100, text)

    return report


def slice_teeth(volume: Volume, out_dir: str | Path, *, stem: str, teeth: Sequence[int] = (11, 21),
                at: Sequence[float] | None = None, offsets: Sequence[float] = (0.0,), slab_mm: float = 0.0,
                slab_mode: str = "mean", spacing_mm: float | None = None,
                size_mm: tuple[float, float] = DEFAULT_SIZE_MM, detector: Detector | None = None,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                on_written: Callable[[WrittenSlice, ToothAxis], None] | None = None) -> SliceRun:
    """Find ``teeth`` in ``volume`` and write their slices into ``out_dir``."""
    from .reslice import reslice
    from .slice_dicom import write_slice
    from .volume_io.dicom_writer import new_uid

    spacing = float(spacing_mm) if spacing_mm else min(volume.spacing)
    if not (math.isfinite(spacing) and spacing > 0):
        raise VolumeError(f"slice spacing must be a positive number of mm, got {spacing_mm!r}")
    offsets = sorted({round(float(o), 6) + 0.0 for o in offsets} or {0.0})
    detector = detector or default_detector()
    axes = list(detector(volume, at=tuple(at) if at is not None else None, teeth=tuple(teeth),
                         progress=_stage(progress, 0, 60), should_stop=should_stop))
    wanted = [int(t) for t in teeth]
    found = {int(a.tooth): a for a in axes}
    run = SliceRun()
    run.teeth = [found[t] for t in wanted if t in found]
    for t in wanted:
        if t not in found:
            run.notes.append(f"tooth {t} was not found in the volume; no slice written for it")
    if not run.teeth:
        raise VolumeError(f"no tooth of {', '.join(map(str, wanted))} was found in the volume: no slice written. "
                          "Check that the volume shows the upper incisors, or give a point in the crown with --at X,Y,Z")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VolumeError(f"cannot create the output folder '{out_dir}' ({exc.strerror}): choose another --out") from None
    series_uid = new_uid()
    jobs = [(a, o) for a in run.teeth for o in offsets]
    report = _stage(progress, 60, 100)
    for n, (axis, off) in enumerate(jobs):
        if should_stop is not None and should_stop():
            raise VolumeCancelled("slicing was cancelled")
        if report is not None:
            report(n, len(jobs), f"tooth {axis.tooth}, offset {off:+g} mm")
        plane = plane_for_tooth(axis, spacing, size_mm, offset_mm=off)
        image = reslice(volume, plane, slab_mm=slab_mm, mode=slab_mode)
        dcm, js = write_slice(volume, plane, image, out_dir / slice_name(stem, axis.tooth, off), tooth=axis,
                              offset_mm=off, slab_mm=slab_mm, slab_mode=slab_mode, series_uid=series_uid,
                              instance=n + 1)
        done = WrittenSlice(int(axis.tooth), off, dcm, js, plane)
        run.slices.append(done)
        if on_written is not None:
            on_written(done, axis)
    if report is not None:
        report(len(jobs), len(jobs), "done")
    return run


def slice_cli(volume_path: str | Path, out: str | Path, teeth: Sequence[int] = (11, 21),
              at: Sequence[float] | None = None, offsets: Sequence[float] = (0.0,), slab_mm: float = 0.0,
              spacing_mm: float | None = None, detector: Detector | None = None, stdout=None) -> int:
    """``dentseg slice``: one line per slice written; 0 when every tooth was sliced, 1 when some were not found.

    Bad input raises ``VolumeError`` (the command line prints it as one line, exit status 2)."""
    from .volume_io import load_volume, volume_stem

    stdout = stdout or sys.stdout
    bad = [t for t in teeth if t not in FDI_TEETH]
    if bad:
        raise VolumeError(f"--tooth takes FDI numbers (11 = upper right central incisor, 21 = upper left), "
                          f"got {', '.join(map(str, bad))}")
    volume = load_volume(volume_path)
    for note in volume.meta.get("notes", []):
        print(f"note: {note}", file=stdout)
    stem = volume_stem(volume_path)

    noted: set[int] = set()

    def line(s: WrittenSlice, axis: ToothAxis) -> None:
        rows, cols = s.plane.shape
        off = f"{s.offset_mm:+g}" if s.offset_mm else "0"
        print(f"wrote {s.dicom} (tooth {s.tooth}, offset {off} mm, {cols}×{rows} px at "
              f"{s.plane.spacing[0]:.3g} mm, detection confidence {axis.confidence:.2f})", file=stdout)
        if axis.notes and s.tooth not in noted:
            noted.add(s.tooth)
            print(f"note: tooth {s.tooth}: {'; '.join(map(str, axis.notes))}", file=stdout)

    run = slice_teeth(volume, out, stem=stem, teeth=teeth, at=at, offsets=offsets, slab_mm=slab_mm,
                      spacing_mm=spacing_mm, detector=detector, on_written=line)
    for note in run.notes:
        print(f"note: {note}", file=stdout)
    return 1 if run.notes and any("not found" in n for n in run.notes) else 0
