"""The one image type of DentSeg (Qt-free).

``SliceImage.pixels`` holds the raw intensities as float32 (16-bit values and
DICOM Hounsfield units kept, never squashed to 8 bit); ``spacing_mm`` is
(row, column) in millimetres or ``None`` when the file carries none.
Loading lives in ``image_io``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SliceImage:
    pixels: np.ndarray                      # 2-D float32, raw intensities (after DICOM rescale)
    spacing_mm: tuple[float, float] | None  # (row, column) mm, or None if the file has none
    source: str                             # path it was read from ('' if made in memory)
    kind: str = "array"                     # 'png', 'jpeg', 'tiff', 'bmp', 'dicom', 'array'
    bit_depth: int = 8                      # bits per sample of the stored file
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def value_range(self) -> tuple[float, float]:
        """Robust display window (0.5 and 99.5 percentiles) of the raw intensities."""
        px = self.pixels
        step = max(1, int(np.sqrt(px.size / 250_000)))
        sample = px[::step, ::step]
        lo, hi = np.percentile(sample, [0.5, 99.5])
        if hi <= lo:
            lo, hi = float(px.min()), float(px.max())
            if hi <= lo:
                hi = lo + 1.0
        return float(lo), float(hi)

    def normalized(self) -> np.ndarray:
        """Intensities mapped to [0, 1] with the robust window (what the network sees)."""
        lo, hi = self.value_range()
        return np.clip((self.pixels - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    def with_spacing(self, spacing_mm: tuple[float, float] | None) -> "SliceImage":
        return SliceImage(self.pixels, spacing_mm, self.source, self.kind, self.bit_depth, dict(self.meta))
