"""The bounds DentSeg puts on what it reads, and what an input costs (Qt-free, torch-free).

Every number here exists so that no file, however made, can crash DentSeg, hang it or
exhaust the machine's memory: a file past a bound is refused with a message naming the
field or the file, before the expensive work starts. The numbers are far beyond any
real case (a CBCT slice is < 1,000 x 1,000 pixels; a hand or model outline has a few
hundred vertices); ``docs/reliability.md`` says how each was chosen.
"""

from __future__ import annotations

import math
import os
from typing import Any

# --------------------------------------------------------------------------- annotation files

#: Largest annotation file read (bytes). 100,000 vertices written by DentSeg are ~5 MB.
MAX_ANNOTATION_BYTES = 16 * 1024 * 1024
#: Deepest nesting of JSON arrays/objects (a MultiPolygon's coordinates are at depth 7).
MAX_JSON_DEPTH = 32
#: Most polygon vertices in one annotation file (all regions together).
MAX_VERTICES = 100_000
#: Most polygons (parts) in one region.
MAX_PARTS = 1_000
#: Most rings (outlines + holes) in one region.
MAX_RINGS = 5_000
#: Most crossings of one outline with itself that are repaired (splitting a self-crossing
#: outline costs ~0.3 s per 10,000 crossings on one core; a 500-vertex "spaghetti" has 56,000).
MAX_CROSSINGS = 10_000
#: Most crossings between the outlines of a region's parts and holes that are repaired
#: (uniting overlapping parts: 0.04 s for 200 overlapping discs with ~30,000 crossings, but
#: 1.3 s for a grid of 224 strips with 50,000, whose union keeps every crossing).
MAX_PART_CROSSINGS = 40_000
#: Largest image side (pixels) an annotation may describe (DICOM Rows/Columns are 16-bit).
MAX_IMAGE_SIDE = 65_535
#: Pixel spacing (mm) a file, an image or the user may give: anything outside is refused.
SPACING_RANGE_MM = (1e-4, 100.0)
#: Pixel spacing (mm) that prediction accepts: a dental slice or radiograph is 0.05-1 mm.
PLAUSIBLE_SLICE_SPACING_MM = (0.005, 5.0)

# --------------------------------------------------------------------------- images and memory

#: Working memory of loading one pixel (decoded samples, float32 intensities, one float32 copy).
LOAD_BYTES_PER_PIXEL = 24
#: Working memory of predicting one pixel at its original size (measured: ~52 bytes/pixel on a
#: 4000 x 4000 slice: probabilities, their 2x contouring grid, the restore, the normalised copy).
PREDICT_BYTES_PER_PIXEL = 60
#: Largest slice prediction runs on (pixels): a cephalogram of 4096 x 5120 is 21 MP.
PREDICT_MAX_PIXELS = 40_000_000
#: Share of the available memory one load or one prediction may plan to use.
MEMORY_SHARE = 0.5


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return None


def memory_pixel_limit(bytes_per_pixel: int, hard_limit: int) -> tuple[int, int | None]:
    """(pixel limit, available bytes): ``hard_limit``, lowered to what the machine's free memory
    allows (``MEMORY_SHARE`` of ``MemAvailable`` at ``bytes_per_pixel``)."""
    avail = available_memory()
    if avail is None:
        return hard_limit, None
    return max(0, min(hard_limit, int(avail * MEMORY_SHARE / bytes_per_pixel))), avail


def human_bytes(n: float) -> str:
    if n < 2**20:
        return f"{int(n)} bytes"
    if n < 2**30:
        return f"{n / 2**20:.0f} MB"
    return f"{n / 2**30:.1f} GB"


def prediction_input_problem(image: Any, spacing: Any = None) -> str | None:
    """Why prediction must not run on ``image`` (a ``SliceImage``), or None.

    The spacing prediction would use (the image's, else ``spacing``) must be plausible
    for a dental slice (``PLAUSIBLE_SLICE_SPACING_MM``): the network resamples to its own
    spacing and the boundary search works in mm, so a spacing of 1e9 mm once asked for
    91 GB. A file whose own spacing was unusable is refused unless a spacing is given.
    The slice must fit ``PREDICT_MAX_PIXELS`` and half the available memory at
    ``PREDICT_BYTES_PER_PIXEL``.
    """
    sp = image.spacing_mm if image.spacing_mm is not None else spacing
    meta = getattr(image, "meta", None) or {}
    if sp is None and meta.get("spacing_problem"):
        return (f"the file's pixel spacing is unusable ({meta['spacing_problem']}); "
                "give the real pixel size with --spacing (in the app: Edit > Pixel spacing)")
    if sp is not None:
        why = spacing_problem(sp, PLAUSIBLE_SLICE_SPACING_MM)
        if why:
            return (f"pixel spacing {why}, which is not a dental slice's; check the spacing "
                    "(--spacing, or Edit > Pixel spacing in the app)")
    h, w = int(image.height), int(image.width)
    limit, avail = memory_pixel_limit(PREDICT_BYTES_PER_PIXEL, PREDICT_MAX_PIXELS)
    if h * w > limit:
        need = human_bytes(h * w * PREDICT_BYTES_PER_PIXEL)
        why = (f"the prediction limit is {PREDICT_MAX_PIXELS / 1e6:.0f} megapixels"
               if limit >= PREDICT_MAX_PIXELS or avail is None else
               f"this computer has {human_bytes(avail)} of memory available")
        return (f"{w} x {h} pixels ({h * w / 1e6:.4g} megapixels) would need about {need} of "
                f"memory to predict and {why}; crop the region around the incisor or downsample "
                "the image, then predict that")
    return None


# --------------------------------------------------------------------------- numbers


def finite_float(v: Any) -> float | None:
    """``float(v)`` for a JSON number (not bool) that is finite, else None (huge ints too)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def spacing_problem(spacing: Any, allowed: tuple[float, float] = SPACING_RANGE_MM) -> str | None:
    """Why ``spacing`` (row, column mm) is unusable, or None when it is two numbers in ``allowed``."""
    try:
        values = [finite_float(v) if not isinstance(v, str) else None for v in spacing]
    except TypeError:
        return f"{spacing!r} is not two numbers"
    if len(values) != 2 or any(v is None for v in values):
        return f"{brief(spacing)} is not two finite numbers (mm)"
    lo, hi = allowed
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        return f"{bad[0]:g} mm is outside the plausible range {lo:g}-{hi:g} mm"
    return None


def brief(v: Any, n: int = 80) -> str:
    """A short repr for a message: never raises, never prints a whole hostile value."""
    try:
        text = repr(v)
    except (ValueError, RecursionError):  # an int too long to print, a list nested too deep
        text = "<a value too long to print>"
    return text if len(text) <= n else text[: n - 3] + "..."


__all__ = ["LOAD_BYTES_PER_PIXEL", "MAX_ANNOTATION_BYTES", "MAX_CROSSINGS", "MAX_IMAGE_SIDE",
           "MAX_JSON_DEPTH", "MAX_PART_CROSSINGS", "MAX_PARTS", "MAX_RINGS", "MAX_VERTICES", "MEMORY_SHARE",
           "PLAUSIBLE_SLICE_SPACING_MM", "PREDICT_BYTES_PER_PIXEL", "PREDICT_MAX_PIXELS",
           "SPACING_RANGE_MM", "available_memory", "brief", "finite_float", "human_bytes",
           "memory_pixel_limit", "prediction_input_problem", "spacing_problem"]
