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
from ..core.errors import DentsegError, ModelError
from ..core.geometry import as_multipolygon, probability_to_geometry
from ..core.image import SliceImage
from ..core.measurements import apply_measurements
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
    raises ``ModelError`` on first use (or at once with ``load()``).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, compensation: bool = True,
                 band_mm: float = 1.5) -> None:
        self.model_path = None if model_path is None else Path(model_path)
        self.compensation = bool(compensation)
        self.band_mm = float(band_mm)
        self._segmenter = None

    def load(self):
        """The ``Segmenter`` (loaded on first call); raises ``ModelError`` for a bad model file."""
        if self._segmenter is None:
            from .inference import Segmenter
            self._segmenter = Segmenter.load(self.model_path)
        return self._segmenter

    @property
    def segmenter(self):
        return self.load()

    def predict_image(self, image: SliceImage, spacing: tuple[float, float] | None = None,
                      should_stop: StopFn | None = None) -> PredictionResult:
        """Annotation for one slice: regions, landmarks, compensation, measurements, provenance."""
        seg_model = self.load()
        timings: dict[str, float] = {}
        t_all = t0 = time.perf_counter()
        seg = seg_model.segment(image, spacing=spacing, should_stop=should_stop)
        timings["segment"] = time.perf_counter() - t0

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
        ann.provenance = self._provenance(seg_model, seg, comp)
        ann = apply_measurements(ann)
        quality = assess(ann, getattr(seg, "landmark_confidence", None), segmentation_certainty(seg.probs),
                         spacing_assumed=bool(getattr(seg, "spacing_assumed", False)),
                         thresholds=thresholds_from_card(getattr(seg_model, "card", None)))
        ann.provenance["quality"] = quality.as_provenance()
        timings["measure"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_all
        return PredictionResult(ann, seg, comp, timings, quality)

    def _provenance(self, seg_model, seg, comp: CompensationResult | None) -> dict[str, Any]:
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        comp_info: dict[str, Any] = {"enabled": comp is not None}
        if comp is not None:
            comp_info.update(comp.as_provenance())
        prov: dict[str, Any] = {
            "source": SOURCE,
            "model": getattr(seg_model, "name", "LU-Net"),
            "model_sha256": getattr(seg_model, "sha256", None),
            "class_weights": _jsonable(getattr(seg_model, "class_weights", None)),
            "compensation": comp_info,
            "spacing_assumed": bool(getattr(seg, "spacing_assumed", False)),
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


def output_path_for(image_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / (Path(image_path).stem + SUFFIX)


def predict_files(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  model: str | os.PathLike | Predictor | None = None,
                  spacing: tuple[float, float] | None = None, compensation: bool = True,
                  progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> list[FileResult]:
    """Predict every image and write ``out_dir/<stem>.dentseg.json``; one result per input path.

    ``model`` is a model file (None = bundled) or a ready ``Predictor`` (then its
    own compensation setting is used and the network is not reloaded).
    A file that cannot be read or predicted gets ``FileResult.error`` (the
    others still run). A bad model raises ``ModelError`` before any file is
    touched. ``progress(done, total, name)`` is called before each file and
    once at the end; ``should_stop()`` returning True ends the run (remaining
    files are reported as cancelled). Two inputs with the same stem would
    write the same output file: the second is reported instead.
    """
    from ..core.image_io import load_image

    predictor = model if isinstance(model, Predictor) else Predictor(model, compensation=compensation)
    predictor.load()
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DentsegError(f"cannot create the output folder {out_dir} ({exc.strerror}); "
                           "choose another --out folder") from None
    paths = [Path(p) for p in paths]
    results: list[FileResult] = []
    written: dict[Path, Path] = {}
    total = len(paths)
    for i, path in enumerate(paths):
        if should_stop is not None and should_stop():
            results.extend(FileResult(p, None, "cancelled before this file was predicted") for p in paths[i:])
            break
        if progress is not None:
            progress(i, total, path.name)
        out_path = output_path_for(path, out_dir)
        if out_path in written:
            results.append(FileResult(path, None, f"same name as {written[out_path]}: both would be "
                                                  f"written to {out_path.name}; rename one of them"))
            continue
        try:
            image = load_image(path, spacing)
            res = predictor.predict_image(image, spacing=spacing, should_stop=should_stop)
            ann = res.annotation
            ann.image_path = path.name
            save_annotation(ann, out_path)
        except ModelError:
            raise
        except DentsegError as exc:
            if isinstance(exc, PredictionCancelled) or (should_stop is not None and should_stop()):
                # stopped inside this file (the segmenter raises its own "cancelled" error)
                results.extend(FileResult(p, None, "cancelled before this file was predicted")
                               for p in paths[i:])
                break
            results.append(FileResult(path, None, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd image must not end a batch of hundreds
            results.append(FileResult(path, None, f"unexpected error while predicting "
                                                  f"({type(exc).__name__}: {exc}); please report it"))
            continue
        written[out_path] = path
        results.append(FileResult(path, out_path, None, ann))
    if progress is not None:
        progress(total, total, "")
    return results


def predict_cli(images: Sequence[str | os.PathLike], out: str | os.PathLike,
                model: str | os.PathLike | None = None, spacing: tuple[float, float] | None = None,
                compensation: bool = True) -> int:
    """``dentseg predict``: one line per image. Exit 0 all written, 1 some failed, 2 none."""
    results = predict_files(images, out, model=model, spacing=spacing, compensation=compensation)
    n_ok = 0
    for r in results:
        if r.ok:
            n_ok += 1
            print(f"{r.path.name} -> {r.out_path} ({_summary(r.annotation)})")
        else:
            print(f"{r.path.name}: error: {r.error}")
    if n_ok == len(results):
        return 0
    return 2 if n_ok == 0 else 1


def _summary(ann: Annotation | None) -> str:
    if ann is None:
        return ""
    bits = []
    area = ann.measurements.get("pab_area_mm2")
    if area is not None:
        bits.append(f"PAB {area:.1f} mm2")
    elif ann.region("PAB").is_empty:
        bits.append("no PAB found")
    else:
        bits.append(f"PAB: {ann.measurements_missing.get('pab_area_mm2', 'not measured')}")
    if ann.provenance.get("spacing_assumed") and ann.pixel_spacing_mm is not None:
        bits.append(f"spacing assumed {ann.pixel_spacing_mm[1]:g} mm: pass --spacing")
    quality = flagged_quality(ann)
    if quality is not None:
        reasons = [str(r) for r in quality.get("reasons", [])]
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        bits.append(f"{str(quality['level']).upper()}: " + "; ".join(reasons[:3]) + more)
    return ", ".join(bits)
