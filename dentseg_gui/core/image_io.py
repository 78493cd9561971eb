"""Read one 2-D slice from a PNG, JPEG, TIFF, BMP or DICOM file into a ``SliceImage``.

Qt-free and torch-free (numpy, OpenCV, pydicom), so the command line, the GUI and
the model code all load images the same way.

Why it is built like this:

* The format is decided by the file's content (magic bytes), not its suffix, so a
  text file renamed ``.png`` gives a clear "not a supported image" and a DICOM
  without a suffix still opens.
* The pixels stay raw intensities (float32): 16-bit values and DICOM Hounsfield
  units survive, because the network and the window/level work on them.
* Every failure, including the ones OpenCV and pydicom would report with a raw
  exception or a ``None``, becomes an ``ImageLoadError`` whose message names the file,
  says what is wrong and what to do. Sizes are checked from the file header before
  decoding, so a huge file cannot exhaust memory first.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from .errors import ImageLoadError
from .image import SliceImage
from .limits import LOAD_BYTES_PER_PIXEL, SPACING_RANGE_MM, human_bytes, memory_pixel_limit

# --------------------------------------------------------------------------- limits

#: Largest slice (rows x columns) accepted: 200 megapixels = 800 MB as float32.
MAX_PIXELS: int = 200_000_000
#: Largest file accepted (1 GiB); a CBCT slice or a radiograph is far smaller.
MAX_FILE_BYTES: int = 1 << 30
#: Smallest side (pixels) of a usable slice; smaller is an icon, not a CBCT slice.
MIN_SIDE: int = 16

_RASTER_SUFFIXES: dict[str, str] = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".dib": "bmp",
}
#: Suffixes under which DICOM is commonly stored; '' = no suffix (DICOM exports often have none).
_DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom", ".dic", ".ima", "")

#: Lower-case suffixes ``load_image`` accepts. '' (no suffix) means "DICOM by content";
#: any file whose content is DICOM (the 'DICM' marker) is accepted whatever its suffix.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_RASTER_SUFFIXES) + _DICOM_SUFFIXES

_SUPPORTED_TEXT = "PNG, JPEG, TIFF, BMP (8/16-bit, gray or colour) and DICOM"

# Luminance weights (ITU-R BT.601, the ones OpenCV and most viewers use).
_W_RED, _W_GREEN, _W_BLUE = 0.299, 0.587, 0.114

_JPEG2000_UIDS = {
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 multi-component lossless
    "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 multi-component
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
}

_EXPORT_HINT = "export the slice again as uncompressed DICOM, PNG or TIFF"


# --------------------------------------------------------------------------- public API


def is_supported(path: str | os.PathLike) -> bool:
    """True if ``load_image`` will try to read ``path`` (by suffix, or by content).

    A known image suffix is enough; for any other suffix (or none) the first bytes are
    checked for a PNG/JPEG/TIFF/BMP signature or the DICOM 'DICM' marker. It says
    nothing about whether the file is intact - ``load_image`` finds that out.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _RASTER_SUFFIXES or (suffix and suffix in _DICOM_SUFFIXES):
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return _sniff(head) is not None


def load_image(path: str | os.PathLike, spacing: tuple[float, float] | None = None) -> SliceImage:
    """Read one 2-D slice as raw float32 intensities.

    ``spacing`` (row, column) in mm is used for files that carry none (PNG, JPEG, TIFF,
    BMP, or a DICOM without PixelSpacing/ImagerPixelSpacing); a DICOM's own spacing
    always wins. ``meta['spacing_source']`` says where ``spacing_mm`` came from
    ('PixelSpacing', 'ImagerPixelSpacing', 'argument' or None) and
    ``meta['spacing_note']`` explains anything unusual.

    Raises ``ImageLoadError`` (message names the file, the problem and the fix) for every
    failure: missing file, folder, empty, too big, not an image, truncated, too small,
    a DICOM without pixels or with a compression no installed decoder can read.
    """
    p = Path(path)
    user_spacing = _check_spacing_argument(spacing)
    size = _check_file(p)
    head = _read_head(p)
    fmt = _sniff(head)
    if fmt == "dicom":
        return _load_dicom(p, user_spacing, force=False)
    if fmt is None:
        if p.suffix.lower() in _DICOM_SUFFIXES:
            # Old DICOM (ACR-NEMA style) has no 128-byte preamble and no 'DICM'.
            return _load_dicom(p, user_spacing, force=True)
        raise _error(
            p,
            f"it is not a supported image (its content matches none of the supported formats; "
            f"{size} bytes, starts with {head[:8]!r})",
            f"Supported: {_SUPPORTED_TEXT}. Open an image file, or convert this one to PNG or TIFF",
        )
    return _load_raster(p, fmt, user_spacing)


# --------------------------------------------------------------------------- file checks


def _error(path: Path, problem: str, action: str) -> ImageLoadError:
    """One message shape for every failure: file, what is wrong, what to do."""
    return ImageLoadError(f"Cannot open image '{path}': {problem}. {action}.")


def _check_spacing_argument(spacing: Any) -> tuple[float, float] | None:
    if spacing is None:
        return None
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        values = ()
    lo, hi = SPACING_RANGE_MM
    if len(values) != 2 or not all(math.isfinite(v) and lo <= v <= hi for v in values):
        raise ImageLoadError(
            f"Pixel spacing {spacing!r} is not usable: give two positive numbers "
            f"(row spacing, column spacing) in millimetres from {lo:g} to {hi:g}, e.g. 0.15 0.15."
        )
    return values  # type: ignore[return-value]


def _check_file(p: Path) -> int:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _error(p, "the file does not exist", "Check the path and the file name") from None
    except OSError as e:
        raise _error(p, f"the file cannot be accessed ({e.strerror or e})",
                     "Check the path and your permissions") from None
    if p.is_dir():
        raise _error(p, "it is a folder, not an image file", "Choose one image file inside the folder")
    size = int(st.st_size)
    if size == 0:
        raise _error(p, "the file is empty (0 bytes)",
                     "The copy or export failed; copy or export the image again")
    if size > MAX_FILE_BYTES:
        raise _error(
            p,
            f"the file is {_human_bytes(size)}, over the {_human_bytes(MAX_FILE_BYTES)} limit",
            "Export a single 2-D slice, or crop or downsample the image",
        )
    return size


def _human_bytes(n: int) -> str:
    if n < 2**20:
        return f"{n} bytes"
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _read_head(p: Path, n: int = 132) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise _error(p, f"the file cannot be read ({e.strerror or e})",
                     "Check your permissions on the file") from None


def _sniff(head: bytes) -> str | None:
    """Format from the first bytes. DICOM first: its preamble may hold a TIFF header."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    return None


# --------------------------------------------------------------------------- raster formats


def _load_raster(p: Path, fmt: str, user_spacing: tuple[float, float] | None) -> SliceImage:
    try:
        buf = np.fromfile(p, dtype=np.uint8)  # np.fromfile: non-ASCII paths work on every OS
    except (OSError, MemoryError) as e:
        raise _error(p, f"the file cannot be read ({e})", "Check the file and your permissions") from None
    meta: dict[str, Any] = {"format": fmt.upper()}
    header_size = _check_raster_header(p, fmt, buf, meta)
    if header_size is not None:
        _check_dimensions(p, header_size[1], header_size[0])

    try:
        with _quiet_opencv():
            arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except Exception as e:  # cv2.error, MemoryError, ...: never let them escape raw
        raise _error(p, f"the {fmt.upper()} data could not be decoded ({_short(e)})",
                     _damaged_action(fmt)) from None
    if arr is None or arr.size == 0:
        raise _error(p, f"the {fmt.upper()} data could not be decoded (the file is damaged or uses an "
                     "unsupported variant)", _damaged_action(fmt))
    del buf

    gray = _to_gray(p, arr, channel_order="BGR", meta=meta)
    _check_dimensions(p, gray.shape[0], gray.shape[1])
    meta["dtype"] = str(arr.dtype)
    pixels = _as_float32(gray, meta)

    if user_spacing is not None:
        spacing_mm: tuple[float, float] | None = user_spacing
        meta["spacing_source"] = "argument"
    else:
        spacing_mm = None
        meta["spacing_source"] = None
        meta["spacing_note"] = (f"{fmt.upper()} files carry no pixel spacing; "
                                "give the spacing in mm (--spacing) for measurements in mm")
    return SliceImage(pixels, spacing_mm, str(p), kind=fmt, bit_depth=arr.dtype.itemsize * 8, meta=meta)


def _damaged_action(fmt: str) -> str:
    return f"Open the original again or re-export it as {fmt.upper()}, PNG or TIFF"


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own console log while decoding: we report failures ourselves."""
    try:
        old = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except Exception:  # logging API missing in some builds: decode anyway
        yield
        return
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old)


def _check_dimensions(p: Path, rows: int, cols: int) -> None:
    """Refuse before decoding: more than ``MAX_PIXELS``, or more than this machine's free
    memory can decode (``limits.memory_pixel_limit``), or too small to be a slice."""
    limit, avail = memory_pixel_limit(LOAD_BYTES_PER_PIXEL, MAX_PIXELS)
    if rows * cols > limit:
        size = f"the image is {cols} x {rows} pixels ({rows * cols / 1e6:.4g} megapixels)"
        if limit < MAX_PIXELS and avail is not None:
            raise _error(
                p,
                f"{size}; decoding it needs about {human_bytes(rows * cols * LOAD_BYTES_PER_PIXEL)} "
                f"of memory and this computer has {human_bytes(avail)} available (DentSeg plans "
                f"to use at most half: {limit / 1e6:.4g} megapixels now)",
                "Close other programs and try again, or crop the region around the incisor or "
                "downsample the image, then open that",
            )
        raise _error(
            p,
            f"{size}, over the {MAX_PIXELS / 1e6:.4g} megapixel limit",
            "Crop the region around the incisor or downsample the image, then open that",
        )
    if rows < MIN_SIDE or cols < MIN_SIDE:
        raise _error(
            p,
            f"the image is only {cols} x {rows} pixels, too small to be a CBCT slice "
            f"(at least {MIN_SIDE} x {MIN_SIDE} needed)",
            "Open the full-resolution slice, not a thumbnail or icon",
        )


def _check_raster_header(p: Path, fmt: str, buf: np.ndarray, meta: dict[str, Any]) -> tuple[int, int] | None:
    """Truncation check and (width, height) from the header, before any decoding."""
    mv = memoryview(buf)
    n = len(buf)
    truncated = _error(
        p,
        f"the {fmt.upper()} file is truncated (it ends before the image data does; {n} bytes)",
        "The copy or download was incomplete; copy or export the image again",
    )
    if fmt == "png":
        if n < 24 or bytes(mv[12:16]) != b"IHDR":
            raise truncated
        if bytes(mv[max(0, n - 65536):]).rfind(b"IEND") < 0:
            raise truncated
        width, height = struct.unpack_from(">II", mv, 16)
        return int(width), int(height)
    if fmt == "jpeg":
        info = _jpeg_info(mv)
        if info is None:
            raise truncated
        width, height, sos = info  # sos < 0: marker structure not understood; the decoder decides
        if bytes(mv[max(sos, n - 65536, 0):]).rfind(b"\xff\xd9") < 0:
            raise truncated
        return (width, height) if width and height else None
    if fmt == "bmp":
        declared = struct.unpack_from("<I", mv, 2)[0]
        if declared and declared > n:
            raise truncated
        header_len = struct.unpack_from("<I", mv, 14)[0]
        if header_len == 12:
            width, height = struct.unpack_from("<HH", mv, 18)
        else:
            width, height = struct.unpack_from("<ii", mv, 18)
        return abs(int(width)), abs(int(height))
    if fmt == "tiff":
        tiff = _tiff_info(mv)
        if tiff is None:
            raise truncated
        width, height, pages, data_end = tiff
        if data_end > n:
            raise truncated
        meta["pages"] = pages
        if pages > 1:
            meta["page_note"] = f"multi-page TIFF with {pages} pages: the first page was loaded"
        return (width, height) if width and height else None
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_info(mv: memoryview) -> tuple[int, int, int] | None:
    """(width, height, start of scan) from the JPEG markers; None if they run off the end.

    A byte where a marker should be gives (0, 0, -1): damaged, not necessarily truncated.
    """
    n = len(mv)
    i = 2
    width = height = 0
    while i + 4 <= n:
        if mv[i] != 0xFF:
            return 0, 0, -1
        marker = mv[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = (mv[i + 2] << 8) | mv[i + 3]
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            height = (mv[i + 5] << 8) | mv[i + 6]
            width = (mv[i + 7] << 8) | mv[i + 8]
        if marker == 0xDA:
            return width, height, i
        i += 2 + seg_len
    return None


# TIFF field type -> bytes per value; the integer types we read offsets and sizes from.
_TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                   13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_INT_FMT = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q"}


def _tiff_info(mv: memoryview) -> tuple[int, int, int, int] | None:
    """(width, height, pages, end of the first page's pixel data) from the TIFF directories.

    Returns None when a directory or a value it points to lies past the end of the
    file (a truncated file). Classic TIFF and BigTIFF, both byte orders.
    """
    n = len(mv)
    order = "<" if bytes(mv[:2]) == b"II" else ">"
    try:
        magic = struct.unpack_from(order + "H", mv, 2)[0]
        big = magic == 43
        ifd = struct.unpack_from(order + ("Q" if big else "I"), mv, 8 if big else 4)[0]
        count_fmt, entry_size, off_fmt, inline = ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)

        def values(entry: int) -> list[int]:
            tag_type, count = struct.unpack_from(order + "H" + off_fmt, mv, entry + 2)
            fmt = _TIFF_INT_FMT.get(tag_type)
            if fmt is None:
                return []
            nbytes = _TIFF_TYPE_SIZE[tag_type] * count
            pos = entry + 4 + (8 if big else 4)
            if nbytes > inline:
                pos = struct.unpack_from(order + off_fmt, mv, pos)[0]
            if pos + nbytes > n:
                raise struct.error("value past end of file")
            return list(struct.unpack_from(f"{order}{count}{fmt}", mv, pos))

        first: dict[int, list[int]] = {}
        pages = 0
        seen: set[int] = set()
        while ifd and ifd not in seen and pages < 10_000:
            seen.add(ifd)
            if ifd + 8 > n:
                if pages == 0:
                    return None
                break  # a damaged later page does not spoil the first one
            n_entries = struct.unpack_from(order + count_fmt, mv, ifd)[0]
            start = ifd + (8 if big else 2)
            end = start + n_entries * entry_size
            if end + inline > n:
                if pages == 0:
                    return None
                break
            if pages == 0:
                for k in range(n_entries):
                    entry = start + k * entry_size
                    tag = struct.unpack_from(order + "H", mv, entry)[0]
                    if tag in (256, 257, 273, 279, 324, 325):
                        first[tag] = values(entry)
            pages += 1
            ifd = struct.unpack_from(order + off_fmt, mv, end)[0]
    except struct.error:
        return None
    if pages == 0:
        return None
    width = (first.get(256) or [0])[0]
    height = (first.get(257) or [0])[0]
    offsets = first.get(273) or first.get(324) or []
    counts = first.get(279) or first.get(325) or []
    data_end = max((o + c for o, c in zip(offsets, counts)), default=0)
    return int(width), int(height), pages, int(data_end)


# --------------------------------------------------------------------------- pixels


def _to_gray(p: Path, arr: np.ndarray, channel_order: str, meta: dict[str, Any]) -> np.ndarray:
    """2-D intensities from a gray or colour array; alpha dropped, 16-bit precision kept."""
    if arr.ndim == 2:
        meta["channels"] = 1
        return arr
    if arr.ndim != 3:
        raise _error(p, f"the pixel data has shape {arr.shape}, not a 2-D slice",
                     "Export a single 2-D slice (one sagittal image) and open that")
    channels = arr.shape[2]
    meta["channels"] = channels
    if channels == 1:
        return arr[..., 0]
    if channels == 2:  # gray + alpha
        meta["colour_note"] = "gray + alpha: alpha dropped"
        return arr[..., 0]
    if channels not in (3, 4):
        raise _error(p, f"the image has {channels} channels per pixel (expected gray or colour)",
                     "Export it as a gray or RGB image")
    if channels == 4:
        meta["colour_note"] = "alpha channel dropped"
    c0, c1, c2 = arr[..., 0], arr[..., 1], arr[..., 2]
    if np.array_equal(c0, c1) and np.array_equal(c1, c2):
        meta["colour_to_gray"] = "colour file with identical channels: taken as gray unchanged"
        return c0
    red, blue = (c2, c0) if channel_order == "BGR" else (c0, c2)
    gray = red.astype(np.float32) * np.float32(_W_RED)
    gray += c1.astype(np.float32) * np.float32(_W_GREEN)
    gray += blue.astype(np.float32) * np.float32(_W_BLUE)
    meta["colour_to_gray"] = "luminance 0.299 R + 0.587 G + 0.114 B on the raw values"
    return gray


def _as_float32(arr: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """float32 copy; non-finite values of float images replaced by the finite minimum."""
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.dtype.kind == "f" and arr.dtype.kind == "f":
        bad = ~np.isfinite(out)
        if bad.any():
            finite = out[~bad]
            fill = float(finite.min()) if finite.size else 0.0
            out = out.copy() if out is arr else out
            out[bad] = fill
            meta["nonfinite_note"] = f"{int(bad.sum())} NaN/infinite pixels set to {fill:g}"
    return out


# --------------------------------------------------------------------------- DICOM


def _load_dicom(p: Path, user_spacing: tuple[float, float] | None, force: bool) -> SliceImage:
    import pydicom  # imported here so raster loading never pays for it
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(p, force=force)
    except Exception as e:  # pydicom raises many types on damaged or foreign files
        if force or isinstance(e, InvalidDicomError):
            raise _error(p, f"it is not a readable DICOM file (no 'DICM' marker, and it could not be read "
                         f"as DICOM data: {_short(e)})",
                         f"Supported: {_SUPPORTED_TEXT}. Check that this is a DICOM image, "
                         f"or {_EXPORT_HINT}") from None
        raise _error(p, f"the DICOM file is damaged and could not be read ({type(e).__name__}: {_short(e)})",
                     f"Copy the file again from the source, or {_EXPORT_HINT}") from None
    try:
        return _dicom_to_slice(p, ds, user_spacing, forced=force)
    except ImageLoadError:
        raise
    except Exception as e:  # a damaged element only shows when its value is used
        raise _error(p, f"the DICOM file is damaged ({type(e).__name__}: {_short(e)})",
                     f"Copy the file again from the source, or {_EXPORT_HINT}") from None


def _dicom_to_slice(p: Path, ds: Any, user_spacing: tuple[float, float] | None, forced: bool) -> SliceImage:
    from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array

    has_pixels = any(tag in ds for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009))
    if forced and not (has_pixels and "Rows" in ds and "Columns" in ds):
        raise _error(p, "it is not a readable DICOM file (no 'DICM' marker and no DICOM image "
                     "data found in it)",
                     f"Supported: {_SUPPORTED_TEXT}. Check that this is a DICOM image, or {_EXPORT_HINT}")
    if not has_pixels:
        if "DirectoryRecordSequence" in ds:
            what, action = "it is a DICOMDIR (an index of a DICOM folder) and contains no pixel data", \
                "Open one of the image files the folder holds instead"
        else:
            what, action = "the DICOM file contains no pixel data (no image: it may be a report or " \
                "a series header)", f"Open a DICOM image file of the slice, or {_EXPORT_HINT}"
        raise _error(p, what, action)

    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    n_frames = ds.get("NumberOfFrames")
    frames = 1 if n_frames is None or n_frames == "" else int(n_frames)
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise _error(p, f"the DICOM holds a volume without a usable slice (Rows {rows}, Columns {cols}, "
                     f"frames {frames})", "Export a single 2-D slice as uncompressed DICOM, PNG or TIFF")
    _check_dimensions(p, rows, cols)

    meta: dict[str, Any] = {"format": "DICOM"}
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None:
        meta["transfer_syntax"] = ts.name
        meta["transfer_syntax_uid"] = str(ts)
        if ts.is_compressed:
            _check_decoder(p, ts, get_decoder)
    for key, name in (("Modality", "modality"), ("PhotometricInterpretation", "photometric")):
        if key in ds:
            meta[name] = str(ds.get(key))

    index: int | None = None
    if frames > 1:
        index = frames // 2
        meta["frames"] = frames
        meta["frame_index"] = index
        meta["frame_note"] = (f"multi-frame DICOM with {frames} frames: "
                              f"the middle frame (index {index}) was loaded")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(ds, index=index)
    except MemoryError:
        raise _error(p, "there is not enough memory to decode the pixel data",
                     "Close other programs, or export a smaller slice") from None
    except Exception as e:
        if ts is not None and ts.is_compressed:
            raise _error(p, f"its {ts.name} compressed pixel data could not be decoded ({_short(e)})",
                         f"The file may be damaged; {_EXPORT_HINT}") from None
        raise _error(p, f"the DICOM pixel data is damaged or incomplete ({_short(e)})",
                     f"Copy the file again from the source, or {_EXPORT_HINT}") from None

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric == "PALETTE COLOR" and arr.ndim == 2:
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3 and samples == 1 and photometric.startswith("MONOCHROME"):
        raise _error(p, f"the DICOM pixel data has shape {arr.shape}, not a 2-D slice",
                     "Export a single 2-D slice as uncompressed DICOM, PNG or TIFF")
    stored_dtype = arr.dtype
    if arr.ndim == 3:  # RGB (pydicom already turned YBR into RGB)
        pixels = _as_float32(_to_gray(p, arr, channel_order="RGB", meta=meta), meta)
    else:
        pixels = _as_float32(_dicom_rescale(ds, arr, index, meta, apply_modality_lut), meta)

    _dicom_window(ds, meta)
    if photometric == "MONOCHROME1":
        lo, hi = float(pixels.min()), float(pixels.max())
        pixels = (np.float32(lo + hi) - pixels).astype(np.float32)
        meta["photometric_note"] = "MONOCHROME1 inverted (max + min - value) so that bright = dense"
        if "window_center" in meta:
            meta["window_center"] = lo + hi - meta["window_center"]
    _check_dimensions(p, pixels.shape[0], pixels.shape[1])

    spacing_mm = _dicom_spacing(ds, index, user_spacing, meta)
    bits = ds.get("BitsStored") or ds.get("BitsAllocated") or stored_dtype.itemsize * 8
    return SliceImage(pixels, spacing_mm, str(p), kind="dicom", bit_depth=int(bits), meta=meta)


def _check_decoder(p: Path, ts: Any, get_decoder: Any) -> None:
    """Clear message when the compression needs a plugin that is not installed."""
    is_j2k = str(ts) in _JPEG2000_UIDS
    try:
        decoder = get_decoder(ts)
        available, missing = decoder.is_available, list(decoder.missing_dependencies)
    except NotImplementedError:
        available, missing = False, []
    if available:
        return
    if is_j2k:
        raise _error(
            p,
            f"the file uses JPEG 2000 compression ({ts.name}) and no JPEG 2000 decoder is installed",
            "Install one (pip install pylibjpeg pylibjpeg-openjpeg), or export the slice as "
            "uncompressed DICOM, PNG or TIFF",
        )
    options = "; ".join(missing) if missing else "no decoder exists for it in pydicom"
    raise _error(
        p,
        f"the file uses {ts.name} compression and no decoder for it is installed (options: {options})",
        f"Install one of those packages, or {_EXPORT_HINT}",
    )


def _dicom_rescale(ds: Any, arr: np.ndarray, index: int | None, meta: dict[str, Any],
                   apply_modality_lut: Any) -> np.ndarray:
    """Stored values -> modality values (e.g. Hounsfield units): LUT or slope/intercept.

    Enhanced multi-frame files keep slope/intercept in the functional groups, so those
    are searched too (per-frame first, then shared, then the top level).
    """
    if "ModalityLUTSequence" in ds and ds.ModalityLUTSequence:
        meta["rescale_note"] = "modality LUT applied"
        return apply_modality_lut(arr, ds)
    for item in _functional_items(ds, index, "PixelValueTransformationSequence") + [ds]:
        if "RescaleSlope" in item or "RescaleIntercept" in item:
            slope = float(item.get("RescaleSlope", 1.0) or 1.0)
            intercept = float(item.get("RescaleIntercept", 0.0) or 0.0)
            meta["rescale_slope"] = slope
            meta["rescale_intercept"] = intercept
            if slope == 1.0 and intercept == 0.0:
                return arr
            out = arr.astype(np.float64 if arr.dtype.itemsize > 2 else np.float32)
            if slope != 1.0:
                out *= slope
            out += intercept
            return out
    return arr


def _functional_items(ds: Any, index: int | None, sequence: str) -> list[Any]:
    """The items of ``sequence`` inside the per-frame and shared functional groups."""
    items: list[Any] = []
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index is not None and index < len(per_frame):
        groups.append(per_frame[index])
    elif per_frame and len(per_frame) > 0:
        groups.append(per_frame[0])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        seq = group.get(sequence)
        if seq:
            items.append(seq[0])
    return items


def _dicom_window(ds: Any, meta: dict[str, Any]) -> None:
    for key, name in (("WindowCenter", "window_center"), ("WindowWidth", "window_width")):
        value = ds.get(key)
        if value is None or value == "":
            continue
        first = value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value
        try:
            meta[name] = float(first)
        except (TypeError, ValueError):
            pass


def _parse_spacing(value: Any) -> tuple[tuple[float, float] | None, str | None]:
    """(spacing, problem) from a DICOM spacing value (row, column)."""
    if value is None or value == "":
        return None, None
    try:
        many = isinstance(value, Sequence) and not isinstance(value, str)
        nums = [float(v) for v in (value if many else [value])]
    except (TypeError, ValueError):
        return None, f"unreadable value {value!r}"
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or not all(math.isfinite(v) and v > 0 for v in nums):
        return None, f"invalid value {list(nums)}"
    lo, hi = SPACING_RANGE_MM
    if not all(lo <= v <= hi for v in nums):
        return None, f"implausible value {[float(f'{v:.6g}') for v in nums]} mm (outside {lo:g}-{hi:g} mm)"
    return (nums[0], nums[1]), None


def _dicom_spacing(ds: Any, index: int | None, user_spacing: tuple[float, float] | None,
                   meta: dict[str, Any]) -> tuple[float, float] | None:
    """PixelSpacing (row, column), else ImagerPixelSpacing, else the caller's spacing."""
    problems: list[str] = []
    candidates = [ds.get("PixelSpacing")] + [
        item.get("PixelSpacing") for item in _functional_items(ds, index, "PixelMeasuresSequence")
    ]
    for value in candidates:
        spacing, problem = _parse_spacing(value)
        if problem:
            problems.append(f"PixelSpacing: {problem}")
        if spacing:
            meta["spacing_source"] = "PixelSpacing"
            if user_spacing is not None:
                meta["spacing_note"] = "the given spacing was ignored: the file's PixelSpacing was used"
            return spacing
    spacing, problem = _parse_spacing(ds.get("ImagerPixelSpacing"))
    if problem:
        problems.append(f"ImagerPixelSpacing: {problem}")
    if spacing:
        meta["spacing_source"] = "ImagerPixelSpacing"
        meta["spacing_note"] = ("no PixelSpacing in the file: ImagerPixelSpacing (measured at the detector, "
                                "not corrected for magnification) was used")
        return spacing
    bad = f" ({'; '.join(problems)})" if problems else ""
    if problems:
        meta["spacing_problem"] = "; ".join(problems)
    if user_spacing is not None:
        meta["spacing_source"] = "argument"
        meta["spacing_note"] = (f"the DICOM file carries no usable pixel spacing{bad}: "
                                "the given spacing was used")
        return user_spacing
    meta["spacing_source"] = None
    meta["spacing_note"] = (f"the DICOM file carries no usable pixel spacing{bad}; "
                            "give the spacing in mm (--spacing) for measurements in mm")
    return None
