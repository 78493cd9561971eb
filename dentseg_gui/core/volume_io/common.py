"""What every volume reader shares: progress and Cancel, the memory check, the preallocated array.

A reader never builds a second full-size copy of the voxels: it checks that the
volume fits in the memory that is free (``check_memory``, from the header alone,
before anything is allocated), makes the output array once (``allocate``) and
fills it slice by slice, reporting progress and honouring Cancel between slices.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

from ..volume import VolumeError

ProgressFn = Callable[[int, int, str], None]
StopFn = Callable[[], bool]

#: a volume may use at most this share of the memory that is free when loading starts
MEMORY_SHARE = 0.85


class VolumeCancelled(VolumeError):
    """The user pressed Cancel while a volume was loading or being sliced (nothing half-made is kept)."""


class Progress:
    """``progress(done, total, text)`` and ``should_stop()`` of the caller, both optional."""

    def __init__(self, progress: Optional[ProgressFn] = None, should_stop: Optional[StopFn] = None):
        self._progress = progress
        self._should_stop = should_stop

    def check(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise VolumeCancelled("loading the volume was cancelled")

    def __call__(self, done: int, total: int, text: str = "") -> None:
        """Report progress, after checking Cancel."""
        self.check()
        if self._progress is not None:
            self._progress(int(done), int(total), text)


def human_bytes(n: float) -> str:
    if n < 2 ** 20:
        return f"{int(n)} bytes"
    return f"{n / 2 ** 20:.0f} MiB" if n < 2 ** 30 else f"{n / 2 ** 30:.2f} GiB"


def available_memory_bytes() -> int | None:
    """Memory that can be allocated without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(shape: tuple[int, ...], dtype, what: str) -> int:
    """Raise ``VolumeError`` when ``shape`` × ``dtype`` does not fit in the free memory."""
    nbytes = int(np.prod([int(n) for n in shape], dtype=np.float64)) * np.dtype(dtype).itemsize
    free = available_memory_bytes()
    if free is not None and nbytes > MEMORY_SHARE * free:
        dims = "×".join(str(int(n)) for n in reversed(shape))
        raise VolumeError(
            f"{what} is too large for the memory: {dims} voxels of {np.dtype(dtype).itemsize * 8}-bit "
            f"need {human_bytes(nbytes)} but only {human_bytes(free)} is free. Close other programs, "
            "or crop the volume around the teeth (or downsample it) in your CBCT viewer and open that")
    return nbytes


def allocate(shape: tuple[int, int, int], dtype, what: str) -> np.ndarray:
    """The output array (C order, uninitialised), after the memory check."""
    check_memory(shape, dtype, what)
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError:
        raise VolumeError(f"{what} is too large for the memory ({human_bytes(np.prod(shape) * np.dtype(dtype).itemsize)}): "
                          "close other programs, or crop the volume around the teeth and open that") from None
