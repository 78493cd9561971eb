"""The full prediction pipeline: LU-Net -> regions -> boundary compensation -> measurements.

One slice goes through:

1. ``Segmenter.segment`` (model.inference): per-pixel class probabilities in the
   original pixel grid, and the three landmarks;
2. regions: the PAB is where its probability beats both other classes
   (contoured to sub-pixel with ``probability_to_geometry``); specks and tiny
   holes are dropped, the largest piece is kept together with pieces at least
   a third of its size (a dehiscence can split real bone in two);
3. boundary compensation of the palatal PAB surface (model.compensation);
4. measurements in the CEJ-apex frame (``core.measurements.apply_measurements``).

The result is an ``Annotation`` with full provenance (model name and hash,
compensation on/off and how far it moved the boundary, whether the pixel
spacing was assumed). ``predict_files`` runs a batch with one bad file
reported by name while the others go on; ``predict_cli`` is ``dentseg predict``.
"""

from __future__ import annotations

import dataclasses

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from shapely.geometry import MultiPolygon, Polygon

from .. import __version__
from ..core.annotation import SUFFIX, Annotation, save_annotation
from ..core.errors import DentsegError, ImageLoadError
from ..core.geometry import as_multipolygon, probability_to_geometry
from ..core.image import SliceImage
from ..core.limits import prediction_input_problem
from ..core.measurements import apply_measurements
from ..core.overwrite_guard import check_outputs
from ..core.provenance import flagged_quality
from .compensation import CompensationResult, compensate
from .quality import QualityCheck, assess, segmentation_certainty, thresholds_from_card

SOURCE = "LU-Net prediction"
# a second region piece is kept when it is at least this fraction of the largest
_KEEP_PART_FRACTION = 1.0 / 3.0
# holes smaller than this (mm^2) are prediction noise, not anatomy
_MIN_HOLE_MM2 = 0.25

ProgressFn = Callable[[int, int, str], None]
StopFn = Callable[[], bool]


class PredictionCancelled(DentsegError):
    """The user stopped a prediction run."""


@dataclass
class PredictionResult:
    annotation: Annotation                     # regions, landmarks, measurements, provenance
    segmentation: Any                          # inference.SegmentationResult (probabilities etc.)
    compensation: CompensationResult | None    # None when compensation is switched off
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    quality: QualityCheck = field(default_factory=QualityCheck)  # plausibility (model.quality)


@dataclass
class FileResult:
    path: Path
    out_path: Path | None
    error: str | None = None
    annotation: Annotation | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------- regions


def probabilities_to_region(probs: np.ndarray, cls: int, spacing_mm: tuple[float, float] | None) -> MultiPolygon:
    """Region of class ``cls`` where it beats every other class, cleaned of specks and pinholes.

    The contour is placed at sub-pixel precision on the margin
    ``p_cls - max(p_other)`` (zero = the argmax border).
    """
    probs = np.asarray(probs, np.float32)
    others = np.delete(probs, cls, axis=0).max(axis=0)
    margin = 0.5 * (probs[cls] - others) + 0.5       # 0.5 = tie with the best other class
    geom = probability_to_geometry(margin, threshold=0.5)
    return keep_main_parts(geom, spacing_mm)


def keep_main_parts(geom: MultiPolygon, spacing_mm: tuple[float, float] | None) -> MultiPolygon:
    """Largest piece plus pieces >= 1/3 of it; holes under ``_MIN_HOLE_MM2`` filled."""
    geom = as_multipolygon(geom)
    if geom.is_empty:
        return geom
    parts = sorted(geom.geoms, key=lambda p: p.area, reverse=True)
    big = parts[0].area
    kept = [p for p in parts if p.area >= _KEEP_PART_FRACTION * big]
    px_area = 1.0 if spacing_mm is None else float(spacing_mm[0]) * float(spacing_mm[1])
    min_hole_px = _MIN_HOLE_MM2 / px_area
    cleaned = [Polygon(p.exterior.coords, [h.coords for h in p.interiors if Polygon(h).area >= min_hole_px])
               for p in kept]
    return as_multipolygon(MultiPolygon(cleaned))


# --------------------------------------------------------------------------- predictor


class Predictor:
    """Loads the network once (lazily) and predicts annotations for slices.

    ``model_path`` None = the bundled ``resources/lunet.pt``. A bad model file
    raises ``ModelError`` on first use (or at once with ``load()``). ``engine`` and
    ``threads`` go to ``Segmenter.load`` (ONNX Runtime or torch; thread count).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, compensation: bool = True,
                 band_mm: float = 1.5, engine: str = "auto", threads: int | None = None,
                 assume_spacing: tuple[float, float] | None = None) -> None:
        self.model_path = None if model_path is None else Path(model_path)
        #: the spacing to use, marked as assumed, for an image that carries none and gets none;
        #: None: such an image is refused (a spacing is never invented)
        self.assume_spacing = None if assume_spacing is None else (float(assume_spacing[0]),
                                                                   float(assume_spacing[1]))
        self.compensation = bool(compensation)
        self.band_mm = float(band_mm)
        self.engine = engine
        self.threads = threads
        self._segmenter = None

    def load(self):
        """The ``Segmenter`` (loaded on first call); raises ``ModelError`` for a bad model file."""
        if self._segmenter is None:
            from .inference import Segmenter
            self._segmenter = Segmenter.load(self.model_path, engine=self.engine, threads=self.threads)
        return self._segmenter

    @property
    def segmenter(self):
        return self.load()

    def predict_image(self, image: SliceImage, spacing: tuple[float, float] | None = None,
                      should_stop: StopFn | None = None) -> PredictionResult:
        """Annotation for one slice: regions, landmarks, compensation, measurements, provenance."""
        t0 = time.perf_counter()
        seg = self.segment(image, spacing=spacing, should_stop=should_stop)
        return self.annotate(image, seg, should_stop=should_stop,
                             timings={"segment": time.perf_counter() - t0}, t_start=t0)

    def segment(self, image: SliceImage, spacing: tuple[float, float] | None = None,
                should_stop: StopFn | None = None):
        """The network stage alone (``inference.SegmentationResult``); ``annotate`` does the rest.

        Split so that a batch can run the network on one image while the previous
        one is turned into regions and measurements (``model.batch``).
        """
        assumed = False
        if image.spacing_mm is None and spacing is None:
            if self.assume_spacing is None:
                note = image.meta.get("spacing_problem") if isinstance(image.meta, dict) else None
                raise ImageLoadError(
                    (f"the file's pixel spacing is unusable ({note})" if note else
                     "no pixel spacing (the file carries none)")
                    + ": give the pixel size with --spacing MM (in the app: Edit › Pixel spacing), or "
                      "--assume-spacing MM to predict anyway with every number marked as assumed")
            spacing, assumed = self.assume_spacing, True
        problem = prediction_input_problem(image, spacing)  # implausible spacing, too many pixels
        if problem:  # the CLI line and the app's message put the file name in front
            raise ImageLoadError(problem)
        from .orientation import segment_upright
        seg, degrees, scores = segment_upright(self.load().segment, image, spacing=spacing,
                                               should_stop=should_stop)
        if assumed:
            seg = dataclasses.replace(seg, spacing_assumed=True)
        if degrees or len(scores) > 1:
            seg = dataclasses.replace(seg, orientation_deg=degrees,
                                      orientation_scores={k: round(v, 3) for k, v in scores.items()})
        return seg

    def annotate(self, image: SliceImage, seg, should_stop: StopFn | None = None,
                 timings: dict[str, float] | None = None, t_start: float | None = None) -> PredictionResult:
        """Regions, compensation, measurements and provenance from a ``segment`` result."""
        seg_model = self.load()
        timings = dict(timings or {})
        t_all = t_start if t_start is not None else time.perf_counter()
        t0 = time.perf_counter()
        sp = tuple(float(v) for v in seg.spacing_used) if seg.spacing_used is not None else None
        pab = probabilities_to_region(seg.probs, 1, sp)
        enamel = probabilities_to_region(seg.probs, 2, sp)
        landmarks = {k: (float(v[0]), float(v[1])) for k, v in seg.landmarks.items() if v is not None}
        timings["regions"] = time.perf_counter() - t0

        comp: CompensationResult | None = None
        if self.compensation:
            if should_stop is not None and should_stop():
                raise PredictionCancelled("prediction cancelled")
            t0 = time.perf_counter()
            comp = compensate(image.normalized(), pab, landmarks, sp, probs_pab=seg.probs[1],
                              band_mm=self.band_mm)
            pab = comp.region
            timings["compensation"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        ann = Annotation(image_path=Path(image.source).name if image.source else "image",
                         width=image.width, height=image.height, pixel_spacing_mm=sp,
                         regions={"PAB": pab, "enamel": enamel}, landmarks=landmarks)
        ann.provenance = self._provenance(seg_model, seg, comp, image)
        degrees = int(getattr(seg, "orientation_deg", 0) or 0)
        if degrees:      # shown upright by turning it; the axis tilt is measured against that view
            ann.extra["orientation"] = {"rotate_ccw_deg": degrees, "mirror": False, "source": "model"}
        ann = apply_measurements(ann)
        quality = assess(ann, getattr(seg, "landmark_confidence", None), segmentation_certainty(seg.probs),
                         spacing_assumed=bool(getattr(seg, "spacing_assumed", False)),
                         thresholds=thresholds_from_card(getattr(seg_model, "card", None)))
        ann.provenance["quality"] = quality.as_provenance()
        frames = int(image.meta.get("frames") or image.meta.get("pages") or 1)
        if frames > 1:  # which frame (DICOM) or page (TIFF) of the file this annotation is for
            ann.provenance["frame"] = {"index": int(image.meta.get("frame_index", 0)), "frames": frames}
        timings["measure"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_all
        return PredictionResult(ann, seg, comp, timings, quality)

    def _provenance(self, seg_model, seg, comp: CompensationResult | None,
                    image: SliceImage | None = None) -> dict[str, Any]:
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        comp_info: dict[str, Any] = {"enabled": comp is not None}
        if comp is not None:
            comp_info.update(comp.as_provenance())
        prov: dict[str, Any] = {
            "source": SOURCE,
            "model": getattr(seg_model, "name", "LU-Net"),
            "model_sha256": getattr(seg_model, "sha256", None),
            # a model without a card: the note travels with the prediction into every report
            "model_verified": getattr(seg_model, "verified", None),
            "model_note": "; ".join(getattr(seg_model, "notes", None) or []) or None,
            "engine": getattr(getattr(seg_model, "engine", None), "label", None),
            "engine_note": getattr(seg_model, "engine_note", None),
            "class_weights": _jsonable(getattr(seg_model, "class_weights", None)),
            "compensation": comp_info,
            "spacing_assumed": bool(getattr(seg, "spacing_assumed", False)),
            "spacing_source": _spacing_source(image, seg),
            "orientation_deg": int(getattr(seg, "orientation_deg", 0) or 0),
            "orientation_scores": {str(k): v for k, v in (getattr(seg, "orientation_scores", None) or {}).items()}
            or None,
            "landmark_source": _jsonable(getattr(seg, "landmark_source", None)),
            "landmark_confidence": _jsonable(getattr(seg, "landmark_confidence", None)),
            "created": created,
            "dentseg_version": __version__,
        }
        # per item, in the shape the GUI's CaseDocument stamps on predicted items,
        # so a file from `dentseg predict` and one saved by the app read the same
        stamp = {"source": "model", "model": prov["model"], "predicted_at": created}
        prov["regions"] = {name: dict(stamp) for name in ("PAB", "enamel")}
        sources = getattr(seg, "landmark_source", None) or {}
        conf = getattr(seg, "landmark_confidence", None) or {}
        prov["landmarks"] = {name: {**stamp, "via": sources.get(name, "heatmap"),
                                    "confidence": _jsonable(conf.get(name))}
                             for name in (getattr(seg, "landmarks", None) or {})}
        return {k: v for k, v in prov.items() if v is not None}


def _jsonable(v: Any) -> Any:
    """Plain JSON types for provenance (numpy scalars and tuples converted, floats rounded)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v


# --------------------------------------------------------------------------- batch


def expand_image_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Images as given; a folder stands for the images directly inside it (sorted by name)."""
    from ..core.annotation import SUFFIX as _ANN
    from ..core.image_io import is_supported
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted((q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")
                           and not q.name.endswith((_ANN, ".json")) and is_supported(q)),
                          key=lambda q: q.name.lower())
        else:
            out.append(p)
    return out


def output_path_for(image_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / (Path(image_path).stem + SUFFIX)


def predict_files(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  model: str | os.PathLike | Predictor | None = None,
                  spacing: tuple[float, float] | None = None, compensation: bool = True,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                  on_result: Callable[[FileResult], None] | None = None,
                  engine: str = "auto", threads: int | None = None,
                  overwrite: bool = False, assume_spacing: tuple[float, float] | None = None) -> list[FileResult]:
    """Predict every image and write ``out_dir/<stem>.dentseg.json``; one result per input path.

    ``model`` is a model file (None = bundled) or a ready ``Predictor`` (then its
    own compensation setting is used and the network is not reloaded).
    A file that cannot be read or predicted gets ``FileResult.error`` (the
    others still run). A bad model raises ``ModelError`` before any file is
    touched. ``progress(done, total, name)`` is called before each file's network
    pass and once at the end; ``should_stop()`` returning True ends the run (remaining
    files are reported as cancelled); ``on_result`` gets each result, in input order,
    as soon as it is written. Two inputs with the same stem would write the same
    output file: the second is reported instead. Reading, the network and writing
    overlap (``model.batch``). An output file that holds hand work or no model
    provenance raises ``OverwriteRefused`` before anything runs unless ``overwrite``;
    a read-only one always does (``core.overwrite_guard``).
    """
    from .batch import run_batch

    paths = expand_image_paths(paths)
    check_outputs([output_path_for(p, out_dir) for p in paths], overwrite)

    predictor = (model if isinstance(model, Predictor)
                 else Predictor(model, compensation=compensation, engine=engine, threads=threads,
                                assume_spacing=assume_spacing))
    predictor.load()
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DentsegError(f"cannot create the output folder {out_dir} ({exc.strerror}); "
                           "choose another --out folder") from None
    paths = [Path(p) for p in paths]
    written: dict[Path, Path] = {}
    out_paths: list[Path | None] = []
    pre_errors: dict[int, str] = {}
    for i, path in enumerate(paths):
        out_path = output_path_for(path, out_dir)
        if out_path in written:
            pre_errors[i] = (f"same name as {written[out_path]}: both would be "
                             f"written to {out_path.name}; rename one of them")
            out_paths.append(None)
            continue
        written[out_path] = path
        out_paths.append(out_path)

    def write(ann: Annotation, path: Path, out_path: Path) -> None:
        ann.image_path = image_path_from(out_path, path)
        _carry_slice_provenance(path, ann, out_dir)
        save_annotation(ann, out_path)

    # a predictor that customises only ``predict_image`` (a stub, a wrapper) runs whole in the
    # network stage; the real one splits into segment (network) and annotate (writer thread)
    stages = predictor if type(predictor).predict_image is Predictor.predict_image else _WholeImage(predictor)
    return run_batch(paths, out_paths, stages, spacing, load=lambda p: _load_for_prediction(p, spacing),
                     write=write, make_result=FileResult, progress=progress, should_stop=should_stop,
                     on_result=on_result, pre_errors=pre_errors)


class _WholeImage:
    """The pipeline's two stages for a predictor that overrides ``predict_image`` only."""

    def __init__(self, predictor: Predictor) -> None:
        self._p = predictor

    def segment(self, image: SliceImage, spacing=None, should_stop: StopFn | None = None) -> PredictionResult:
        return self._p.predict_image(image, spacing=spacing, should_stop=should_stop)

    def annotate(self, image: SliceImage, result: PredictionResult, should_stop: StopFn | None = None):
        return result


def _load_for_prediction(path: Path, spacing: tuple[float, float] | None) -> SliceImage:
    """The image, with the pixel spacing it carries, else ``spacing`` (--spacing), else the one its
    annotation file beside it records (saved by the app or a previous run): carried over, never invented."""
    from ..core.annotation import annotation_path_for, load_annotation
    from ..core.image_io import load_image
    image = load_image(path, spacing)
    if image.spacing_mm is None:
        ann_path = annotation_path_for(path)
        try:
            beside = load_annotation(ann_path) if ann_path.is_file() else None
        except DentsegError:
            beside = None
        if beside is not None and beside.pixel_spacing_mm is not None:
            from ..core.provenance import spacing_source
            image = image.with_spacing(tuple(beside.pixel_spacing_mm))
            image.meta["spacing_source"] = spacing_source(beside)   # where that file had it from
    return image


def image_path_from(annotation_path: Path, image_path: Path) -> str:
    """How an annotation written at ``annotation_path`` names its image: relative to the annotation's
    folder (so the pair can move together), or absolute where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(Path(image_path).resolve(), Path(annotation_path).resolve().parent)).as_posix()
    except ValueError:
        return str(Path(image_path).resolve())


def _spacing_source(image: SliceImage | None, seg) -> str | None:
    """'DICOM' / 'user' / 'assumed' for the provenance (``core.provenance.spacing_source``)."""
    if getattr(seg, "spacing_assumed", False):
        return "assumed"
    src = image.meta.get("spacing_source") if image is not None and isinstance(image.meta, dict) else None
    from ..core.provenance import SPACING_SOURCES
    if src in SPACING_SOURCES:
        return src
    return {"PixelSpacing": "DICOM", "ImagerPixelSpacing": "DICOM", "argument": "user"}.get(src, "user")


def _carry_slice_provenance(image_path: Path, ann: Annotation, out_dir: Path) -> None:
    """A slice made by ``dentseg slice`` keeps its plane, tooth and offset (the whole-tooth report groups by them)."""
    from ..core.annotation import annotation_path_for
    from ..core.slice_dicom import carry_slice_provenance
    carry_slice_provenance(annotation_path_for(image_path), ann, out_dir)


def predict_cli(images: Sequence[str | os.PathLike], out: str | os.PathLike,
                model: str | os.PathLike | None = None, spacing: tuple[float, float] | None = None,
                compensation: bool = True, threads: int | None = None, engine: str = "auto",
                overwrite: bool = False, assume_spacing: tuple[float, float] | None = None) -> int:
    """``dentseg predict``: one line per image as it is written. Exit 0 all written, 1 some failed, 2 none
    (or an output file that must not be replaced: ``core.overwrite_guard``).

    On a terminal, a progress line (done / total, images per second) is kept on stderr.
    """
    import sys

    images = expand_image_paths(images)
    if not images:
        raise DentsegError("no image to predict: the folder(s) given hold no PNG, JPEG, TIFF, BMP or DICOM file")
    check_outputs([output_path_for(p, out) for p in images], overwrite)   # before any work
    predictor = Predictor(model, compensation=compensation, engine=engine, threads=threads,
                          assume_spacing=assume_spacing)
    seg = predictor.load()
    for note in [*getattr(seg, "notes", []), getattr(seg, "engine_note", None)]:
        if note:
            print(f"dentseg predict: note: {note}", file=sys.stderr, flush=True)
    total = len(images)
    live = total > 1 and sys.stderr.isatty()
    t0 = time.perf_counter()
    done = [0, 0]                         # results, of which ok

    def show(r: FileResult) -> None:
        done[0] += 1
        if live:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)
        if r.ok:
            done[1] += 1
            print(f"{r.path.name} -> {r.out_path} ({_summary(r.annotation)})", flush=True)
        else:
            print(f"{r.path.name}: error: {r.error}", flush=True)
        if live and done[0] < total:
            dt = time.perf_counter() - t0
            rate = done[0] / dt if dt > 0 else 0.0
            eta = (total - done[0]) / rate if rate > 0 else 0.0
            print(f"predict: {done[0]}/{total} done, {rate:.1f} images/s, about {eta:.0f} s left",
                  end="", file=sys.stderr, flush=True)

    results = predict_files(images, out, model=predictor, spacing=spacing, on_result=show, overwrite=overwrite)
    if live:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
    if total > 1:
        print(f"predict: {done[1]} of {total} written in {time.perf_counter() - t0:.1f} s "
              f"({seg.engine_label})", file=sys.stderr, flush=True)
    n_ok = sum(r.ok for r in results)
    if n_ok == len(results):
        return 0
    return 2 if n_ok == 0 else 1


def _summary(ann: Annotation | None) -> str:
    if ann is None:
        return ""
    bits = []
    if ann.provenance.get("model_verified") is False:
        bits.append(str(ann.provenance.get("model_note") or "unverified model").split(":")[0].upper())
    frame = ann.provenance.get("frame")
    if isinstance(frame, dict):
        which = {0: " (the first)", frame["frames"] // 2: " (the middle one)"}.get(frame["index"], "")
        bits.append(f"frame {frame['index'] + 1} of {frame['frames']}{which}")
    area = ann.measurements.get("pab_area_mm2")
    if area is not None:
        bits.append(f"PAB {area:.1f} mm2")
    elif ann.region("PAB").is_empty:
        bits.append("no PAB found")
    else:
        bits.append(f"PAB: {ann.measurements_missing.get('pab_area_mm2', 'not measured')}")
    if ann.provenance.get("spacing_assumed") and ann.pixel_spacing_mm is not None:
        bits.append(f"SPACING ASSUMED {ann.pixel_spacing_mm[1]:g} mm: every number scales with it")
    quality = flagged_quality(ann)
    if quality is not None:
        reasons = [str(r) for r in quality.get("reasons", [])]
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        bits.append(f"{str(quality['level']).upper()}: " + "; ".join(reasons[:3]) + more)
    return ", ".join(bits)
