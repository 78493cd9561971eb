"""Find the DICOM images of a folder, read their headers, group them into series; header checks.

The checks every DICOM reader shares (stored pixel type, grey values, an
installed decoder for a compressed series) and the window read from a header
live here too, so the series and multi-frame readers do not import each other.

Only headers are read here (``stop_before_pixels``), so scanning a folder of
400 slices costs well under a second and no pixel memory. Files that are not
DICOM images (a README, a DICOMDIR, a report) are skipped and counted; a file
that claims to be DICOM but cannot be read (or is shorter than its pixel data
needs) stops the load with a message naming it, because a series with a
damaged slice must not open with a hole in it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..volume import VolumeError
from .common import Progress

#: suffixes that say "this file is DICOM" even when it lacks the 'DICM' marker
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
#: at most this many files are scanned in one folder (a CBCT has a few hundred to ~2000 slices)
MAX_FILES = 20000

_HEADER_TAGS_TEXT = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientName",
                     "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                     "AccessionNumber", "StudyDescription", "Modality", "Manufacturer",
                     "ManufacturerModelName", "SeriesDescription", "SeriesNumber", "SOPClassUID")


@dataclass
class SliceHeader:
    """What grouping, sorting and reading need from one DICOM image file."""

    path: Path
    series_uid: str
    sop_uid: str
    rows: int
    cols: int
    frames: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    bits_allocated: int
    pixel_representation: int
    samples: int
    photometric: str
    slope: float
    intercept: float
    description: str = ""
    compressed: bool = False
    transfer_syntax: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _number(value: Any, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def read_header(path: Path, force: bool = False) -> Any:
    """The dataset without its pixel data; ``VolumeError`` naming the file if it cannot be read."""
    return read_header_and_offset(path, force)[0]


def read_header_and_offset(path: Path, force: bool = False) -> tuple[Any, int]:
    """(dataset without pixel data, byte offset where the pixel data element starts)."""
    import pydicom

    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=force)
            return ds, f.tell()
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise VolumeError(f"'{path}' cannot be read as DICOM ({type(exc).__name__}: {_short(exc)}): the "
                          "file is truncated or damaged. Copy the series again from the scanner or PACS") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def header_of(path: Path, ds: Any) -> SliceHeader | None:
    """A ``SliceHeader``, or None when the dataset is not an image (no Rows/Columns)."""
    rows, cols = int(_number(ds.get("Rows"), 0)), int(_number(ds.get("Columns"), 0))
    if rows <= 0 or cols <= 0 or "DirectoryRecordSequence" in ds:
        return None
    frames = int(_number(ds.get("NumberOfFrames"), 1)) or 1
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return SliceHeader(
        path=path, series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        sop_uid=str(ds.get("SOPInstanceUID", "") or ""), rows=rows, cols=cols, frames=frames,
        position=_floats(ds.get("ImagePositionPatient"), 3),
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2),
        bits_allocated=int(_number(ds.get("BitsAllocated"), 16)),
        pixel_representation=int(_number(ds.get("PixelRepresentation"), 0)),
        samples=int(_number(ds.get("SamplesPerPixel"), 1)),
        photometric=str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip().upper(),
        slope=_number(ds.get("RescaleSlope"), 1.0) or 1.0,
        intercept=_number(ds.get("RescaleIntercept"), 0.0),
        description=str(ds.get("SeriesDescription", "") or ""),
        compressed=bool(ts is not None and ts.is_compressed), transfer_syntax=str(ts or ""))


def _has_dicm(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def list_files(folder: Path) -> list[Path]:
    """The files of ``folder``; its sub-folders too when it holds no file itself (a DICOMDIR tree)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError as exc:
        raise VolumeError(f"the folder '{folder}' cannot be read ({exc.strerror or exc}): check the "
                          "path and your permissions") from None
    if not any(_has_dicm(p) or p.suffix.lower() in DICOM_SUFFIXES for p in files):
        files = []
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
            if len(files) > MAX_FILES:
                break
    if len(files) > MAX_FILES:
        raise VolumeError(f"the folder '{folder}' holds more than {MAX_FILES} files: give the folder "
                          "of one series")
    return files


@dataclass
class FolderScan:
    headers: list[SliceHeader]
    skipped: list[Path]           # files that are not DICOM images


def scan_folder(folder: Path, progress: Progress) -> FolderScan:
    files = list_files(folder)
    headers: list[SliceHeader] = []
    skipped: list[Path] = []
    total = len(files)
    for n, path in enumerate(files):
        if n % 16 == 0:
            progress(n, total, f"reading headers {n}/{total}")
        dicm = _has_dicm(path)
        if not dicm and path.suffix.lower() not in DICOM_SUFFIXES:
            skipped.append(path)
            continue
        ds, offset = read_header_and_offset(path, force=not dicm)
        h = header_of(path, ds)
        if h is None:
            if "SOPClassUID" not in ds and "DirectoryRecordSequence" not in ds:
                raise VolumeError(f"'{path}' cannot be read as DICOM (no usable DICOM header in it): the file "
                                  "is truncated or damaged. Copy the series again from the scanner or PACS")
            skipped.append(path)  # a DICOMDIR, a report, a presentation state: no pixels
            continue
        _check_size(h, offset)
        headers.append(h)
    return FolderScan(headers, skipped)


def _check_size(h: SliceHeader, offset: int) -> None:
    """An uncompressed file shorter than its pixel data is truncated: say so before reading.

    ``offset`` is where the pixel data element starts (its header is 8 or 12 bytes)."""
    if h.compressed:
        return
    need = offset + 8 + h.rows * h.cols * h.frames * h.samples * max(h.bits_allocated, 8) // 8
    try:
        size = h.path.stat().st_size
    except OSError:
        return
    if size < need:
        raise VolumeError(f"'{h.path}' is truncated: it holds {size} bytes but its {h.cols}×{h.rows}"
                          f"{'×' + str(h.frames) if h.frames > 1 else ''} image needs at least {need}. Copy the series "
                          "again from the scanner or PACS")


# --------------------------------------------------------------------------- series


@dataclass
class SeriesGroup:
    key: tuple
    headers: list[SliceHeader]

    @property
    def slices(self) -> int:
        return sum(h.frames for h in self.headers)

    @property
    def voxels(self) -> int:
        return sum(h.rows * h.cols * h.frames for h in self.headers)

    def label(self) -> str:
        h = self.headers[0]
        what = f"'{h.description}'" if h.description else "a series without description"
        n = len(self.headers)
        if n == 1 and h.frames > 1:
            size = f"one {h.frames}-frame file"
        else:
            size = f"{n} image{'s' if n != 1 else ''}"
        return f"{what} ({size}, {h.cols}×{h.rows}, series {h.series_uid or '?'})"


def group_series(headers: Sequence[SliceHeader]) -> list[SeriesGroup]:
    """Groups of images that can form one volume, largest first.

    A group is one SeriesInstanceUID with one image size and one orientation
    (a scout inside the series ends up in its own group); each multi-frame file
    is a group of its own.
    """
    groups: dict[tuple, SeriesGroup] = {}
    for h in headers:
        orient = tuple(round(v, 3) for v in h.orientation) if h.orientation else None
        key = (h.series_uid, h.rows, h.cols, orient)
        if h.frames > 1:
            key = key + (str(h.path),)
        groups.setdefault(key, SeriesGroup(key, [])).headers.append(h)
    return sorted(groups.values(), key=lambda g: (-g.voxels, -len(g.headers), g.headers[0].name))


def dicom_meta(ds: Any) -> dict[str, Any]:
    """Identity and description of a series from one of its datasets (strings, JSON-ready)."""
    meta: dict[str, Any] = {}
    for key in _HEADER_TAGS_TEXT:
        v = ds.get(key)
        if v is not None and v != "":
            meta[key] = str(v)
    return meta


def stored_dtype(h: SliceHeader) -> np.dtype:
    """numpy type of the stored pixel values (BitsAllocated, PixelRepresentation)."""
    if h.bits_allocated not in (8, 16, 32):
        raise VolumeError(f"'{h.path}': {h.bits_allocated}-bit pixels are not supported as a volume "
                          "(8, 16 or 32 bits are); export the series as 16-bit DICOM")
    return np.dtype(f"{'i' if h.pixel_representation == 1 else 'u'}{h.bits_allocated // 8}")


def check_decoder(h: SliceHeader, where: str) -> None:
    """A compressed series whose compression no installed plugin decodes: say which, before reading."""
    if not h.compressed or not h.transfer_syntax:
        return
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    ts = UID(h.transfer_syntax)
    try:
        decoder = get_decoder(ts)
        ok, missing = decoder.is_available, list(decoder.missing_dependencies)
    except NotImplementedError:
        ok, missing = False, []
    if not ok:
        need = "; ".join(missing) if missing else "no decoder for it exists in pydicom"
        raise VolumeError(f"{where} uses {ts.name} compression and no decoder for it is installed ({need}). "
                          "Install one (for JPEG 2000: pip install pylibjpeg pylibjpeg-openjpeg), or export the "
                          "series uncompressed")


def check_grayscale(h: SliceHeader, where: str) -> None:
    if h.samples != 1 or not h.photometric.startswith("MONOCHROME"):
        raise VolumeError(f"{where} holds colour images ({h.photometric}), not a CT or CBCT volume: "
                          "export the scan's original grey-value series")


def window_meta(ds: Any, meta: dict[str, Any]) -> None:
    """WindowCenter / WindowWidth (first values) into ``meta``."""
    for key, name in (("WindowCenter", "window_center"), ("WindowWidth", "window_width")):
        v = ds.get(key)
        if v is None or v == "":
            continue
        try:
            meta[name] = float(v[0] if hasattr(v, "__len__") and not isinstance(v, str) else v)
        except (TypeError, ValueError, IndexError):
            pass
