"""Which case to annotate next: the cases without a human annotation, ranked by ``case_need``.

For every image of a folder that nobody has annotated (no annotation file, or only
unreviewed model output), the current model predicts the case (its plausibility
verdict) and ``case_need`` scores how much the model needs it annotated (two-view
disagreement, uncertainty, weakest landmark, verdict). The neediest case comes first.

Scores are cached per (model sha256, image file, its modification time and size,
spacing) in a small JSON file (``NeedCache``), so ranking a folder again after
annotating one case costs only the cases that changed. The reason shown beside the
score names the parts that drove it ("views disagree", "uncertain", "weak apex",
"flagged doubtful").

Qt-free; ``progress(done, total, name)`` and ``should_stop()`` as everywhere in the model
package, so the GUI runs it in a worker.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..core.atomic import atomic_write_text
from ..core.errors import DentsegError

CACHE_FORMAT = "dentseg-need-cache"
CACHE_LIMIT = 5000
#: a part counts as a reason from this value (0..1) on
REASON_FROM = 0.25
REASON_TEXT = {"disagreement": "views disagree", "uncertainty": "uncertain"}
LANDMARK_WORDS = {"apex": "apex", "CEJ_labial": "labial CEJ", "CEJ_palatal": "palatal CEJ"}


def is_unannotated(annotation_path: str | os.PathLike) -> bool:
    """No human annotation: no file, an empty one, or only model output nobody edited.

    A file that cannot be read counts as annotated (it is not offered; the case list shows
    the error)."""
    from ..core.annotation import load_annotation
    from ..core.provenance import has_content, is_model_only

    p = Path(annotation_path)
    if not p.exists():
        return True
    try:
        ann = load_annotation(p)
    except (DentsegError, OSError):
        return False
    return not has_content(ann) or is_model_only(ann)


def need_reasons(parts: dict[str, float], verdict: str | None = None, weakest_landmark: str | None = None) -> list[str]:
    """Words for the parts of a need score that count, largest first."""
    items = sorted(((v, k) for k, v in parts.items() if v >= REASON_FROM), reverse=True)
    out = []
    for _, k in items:
        if k == "verdict":
            out.append(f"flagged {verdict}" if verdict else "flagged")
        elif k == "weak_landmark":
            out.append(f"weak {LANDMARK_WORDS.get(weakest_landmark or '', 'landmark')}")
        else:
            out.append(REASON_TEXT.get(k, k))
    return out


@dataclass
class RankedCase:
    image_path: Path
    score: float | None                # None: could not be scored (``error`` says why)
    reasons: list[str]
    need: dict[str, Any]               # CaseNeed.as_dict() (+ weakest_landmark)
    cached: bool = False
    error: str = ""

    def reason_text(self) -> str:
        if self.error:
            return self.error
        return ", ".join(self.reasons) if self.reasons else "looks typical"


class NeedCache:
    """Need scores on disk: {key: need dict}; the oldest entries go past ``CACHE_LIMIT``."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self.entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.dirty = False
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("entries"), dict):
                    self.entries.update((str(k), v) for k, v in data["entries"].items() if isinstance(v, dict))
            except (OSError, ValueError, UnicodeDecodeError, RecursionError):
                pass                       # a damaged cache is only a slower ranking

    @staticmethod
    def key(model_sha: str, image_path: Path, spacing: tuple[float, float] | None) -> str | None:
        try:
            st = os.stat(image_path)
        except OSError:
            return None
        sp = "none" if spacing is None else f"{float(spacing[0]):.6g}x{float(spacing[1]):.6g}"
        return f"{model_sha}|{Path(image_path).resolve()}|{st.st_mtime_ns}|{st.st_size}|{sp}"

    def get(self, key: str | None) -> dict[str, Any] | None:
        return None if key is None else self.entries.get(key)

    def put(self, key: str | None, need: dict[str, Any]) -> None:
        if key is None:
            return
        self.entries[key] = need
        self.entries.move_to_end(key)
        while len(self.entries) > CACHE_LIMIT:
            self.entries.popitem(last=False)
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            atomic_write_text(self.path, json.dumps({"format": CACHE_FORMAT, "entries": self.entries},
                                                    allow_nan=False))
            self.dirty = False
        except (OSError, ValueError):
            pass                           # a cache that cannot be written is only slower next time


def _load(image_path: Path, spacing_for: Callable[[Path], Any] | None):
    """The image with its spacing: the file's own, else its annotation's, else ``spacing_for``."""
    from ..core.annotation import annotation_path_for, load_annotation
    from ..core.image_io import load_image

    image = load_image(image_path)
    if image.spacing_mm is None:
        sp = None
        ap = annotation_path_for(image_path)
        if ap.exists():
            try:
                sp = load_annotation(ap).pixel_spacing_mm
            except (DentsegError, OSError):
                sp = None
        if sp is None and spacing_for is not None:
            sp = spacing_for(image_path)
        if sp is not None:
            image = image.with_spacing(tuple(sp))
    return image


def score_case(predictor, image) -> dict[str, Any]:
    """Need of one loaded slice with ``predictor`` (a ``model.predict.Predictor``): the full
    prediction gives the plausibility verdict, ``case_need`` the rest."""
    from .case_need import case_need

    verdict = predictor.predict_image(image, spacing=image.spacing_mm).quality.level
    need = case_need(predictor.load(), image, image.spacing_mm, verdict=verdict)
    d = need.as_dict()
    d["weakest_landmark"] = getattr(need, "weakest_landmark", None)
    return d


def rank_images(predictor, image_paths: Iterable[str | os.PathLike], cache: NeedCache | None = None,
                spacing_for: Callable[[Path], Any] | None = None,
                progress: Callable[[int, int, str], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[RankedCase]:
    """Score every image (cached where possible); neediest first, unscorable ones last.

    ``image_paths`` should already be the unannotated ones (``is_unannotated``). Stops early
    on ``should_stop``, returning what it has.
    """
    paths = [Path(p) for p in image_paths]
    cache = cache if cache is not None else NeedCache(None)
    model_sha = str(getattr(predictor.load(), "sha256", None) or "unknown")
    out: list[RankedCase] = []
    for i, path in enumerate(paths):
        if should_stop is not None and should_stop():
            break
        if progress is not None:
            progress(i, len(paths), path.name)
        try:
            image = _load(path, spacing_for)
            if image.spacing_mm is None:
                raise DentsegError("no pixel spacing: set it (Edit › Pixel spacing…) to rank this case")
            key = NeedCache.key(model_sha, path, image.spacing_mm)
            need = cache.get(key)
            cached = need is not None
            if need is None:
                need = score_case(predictor, image)
                cache.put(key, need)
        except DentsegError as exc:
            out.append(RankedCase(path, None, [], {}, error=str(exc)))
            continue
        reasons = need_reasons(need.get("parts") or {}, need.get("verdict"), need.get("weakest_landmark"))
        out.append(RankedCase(path, float(need["score"]), reasons, need, cached))
    if progress is not None:
        progress(len(out), len(paths), "")
    cache.save()
    return sorted(out, key=lambda r: (r.score is None, -(r.score or 0.0), r.image_path.name.lower()))


__all__ = ["NeedCache", "RankedCase", "is_unannotated", "need_reasons", "rank_images", "score_case"]
