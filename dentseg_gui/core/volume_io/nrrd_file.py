"""NRRD volumes (``.nrrd``, and ``.nhdr`` with a detached data file) read into and written from a ``Volume``.

pynrrd parses the header fields; the data (raw, gzip or bzip2) is streamed
slice by slice into the preallocated volume here, so memory never holds a
second copy (pynrrd's own ``read`` keeps the whole decompressed buffer and
then the array). ``space`` / ``space directions`` / ``space origin`` give the
geometry; right-anterior-superior (RAS) and left-anterior-superior (LAS)
spaces are turned into LPS by negating the axes that point the other way.

The writer stores rescaled values (HU) in ``left-posterior-superior`` space,
gzip-compressed: NRRD has no rescale slope, and a file another program opens
should show Hounsfield units. The values are kept integers when the rescale
allows it exactly (the usual slope 1, integer intercept), else float32.
"""

from __future__ import annotations

import bz2
import gzip
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import atomic_write_with
from ..volume import Volume, VolumeError
from .common import Progress, allocate

NRRD_SUFFIXES = (".nrrd", ".nhdr")

_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t"), "i1"),
    **dict.fromkeys(("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"),
    **dict.fromkeys(("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "u2"),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t"), "i4"),
    **dict.fromkeys(("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int",
                     "int64", "int64_t"), "i8"),
    **dict.fromkeys(("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"), "u8"),
    "float": "f4", "double": "f8",
}
#: sign of each axis to go from the file's space to LPS
_SPACE_TO_LPS = {
    "left-posterior-superior": (1, 1, 1), "lps": (1, 1, 1),
    "right-anterior-superior": (-1, -1, 1), "ras": (-1, -1, 1),
    "left-anterior-superior": (1, -1, 1), "las": (1, -1, 1),
}


def is_nrrd_name(path: Path) -> bool:
    return path.suffix.lower() in NRRD_SUFFIXES


def _bad(path: Path, what: str) -> VolumeError:
    return VolumeError(f"'{path}' {what}")


def _read_header_lines(fh: BinaryIO, path: Path) -> tuple[list[str], int]:
    lines: list[str] = []
    size = 0
    first = fh.readline()
    if not first.startswith(b"NRRD000"):
        raise _bad(path, "is not a NRRD file (it does not start with 'NRRD000'): give a .nrrd volume, a "
                         "NIfTI file or a DICOM series folder")
    size += len(first)
    lines.append(first.decode("ascii", "ignore"))
    while True:
        line = fh.readline()
        size += len(line)
        if not line:
            break                                   # header only (.nhdr)
        if line in (b"\n", b"\r\n"):
            break
        lines.append(line.decode("latin-1"))
        if len(lines) > 10000:
            raise _bad(path, "has no end to its header: the file is damaged")
    return lines, size


def load_nrrd(path: Path, progress: Progress) -> Volume:
    import nrrd

    try:
        with open(path, "rb") as fh:
            lines, header_size = _read_header_lines(fh, path)
        header = nrrd.read_header(lines)
    except VolumeError:
        raise
    except Exception as exc:  # pynrrd raises NRRDError and ValueError on bad fields
        text = " ".join(str(exc).split())[:160]
        raise _bad(path, f"has an unreadable NRRD header ({text}): export the volume again") from None
    sizes = [int(n) for n in header["sizes"]]
    spatial = _spatial_axes(header, len(sizes))
    if len(spatial) < 3 or sum(1 for a in spatial if sizes[a] > 1) < 3:
        raise _bad(path, f"is a 2-D image ({'×'.join(map(str, sizes))}), not a volume: open it as an image, "
                         "or give a 3-D scan")
    if len(sizes) != 3:
        raise _bad(path, f"holds {'×'.join(map(str, sizes))} values with non-spatial axes (a vector, colour "
                         "or time series), not one grey-value volume. Save the one volume you want as its own "
                         "NRRD file")
    type_name = str(header["type"]).strip().lower()
    if type_name not in _TYPES:
        raise _bad(path, f"stores '{type_name}' values, not grey values DentSeg reads: export it as 16-bit")
    dtype = np.dtype(_TYPES[type_name])
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if str(header.get("endian", "little")).lower() == "big" else "<")
    notes: list[str] = []
    out_dtype = np.dtype(np.float32) if dtype.kind == "f" else dtype.newbyteorder("=")
    if dtype.kind == "f" and dtype.itemsize > 4:
        notes.append("float64 voxels were stored as float32")
    origin, directions, spacing = _geometry(header, path, notes)
    nx, ny, nz = sizes
    vox = allocate((nz, ny, nx), out_dtype, f"the NRRD volume '{path.name}'")
    _read_data(path, header, header_size, vox, dtype, progress, notes)
    meta: dict[str, Any] = {"format": "NRRD", "files": [str(path)], "notes": notes,
                            "stored_dtype": str(out_dtype), "nrrd_space": str(header.get("space", ""))}
    return Volume(vox, origin, directions, spacing, 1.0, 0.0, source=str(path), meta=meta)


def _spatial_axes(header: dict, dim: int) -> list[int]:
    sd = header.get("space directions")
    if sd is not None:
        arr = np.asarray(sd, dtype=float)
        return [a for a in range(dim) if np.all(np.isfinite(arr[a]))]
    kinds = [str(k).lower() for k in (header.get("kinds") or [])]
    if kinds:
        return [a for a, k in enumerate(kinds) if k in ("domain", "space")]
    return list(range(dim))


def _geometry(header: dict, path: Path, notes: list[str]):
    space = str(header.get("space", "")).strip().lower().removesuffix("-time")
    if space.endswith("t") and space[:-1] in _SPACE_TO_LPS:
        space = space[:-1]
    sd = header.get("space directions")
    if sd is None:
        spacings = header.get("spacings")
        sp = [float(s) for s in spacings] if spacings is not None else [1.0, 1.0, 1.0]
        if not all(np.isfinite(s) and s > 0 for s in sp):
            sp = [1.0, 1.0, 1.0]
            notes.append("the file gives no voxel size: 1 mm was assumed")
        notes.append("the file gives no orientation (no 'space directions'): the voxel axes were taken as "
                     "the patient's axes, so left/right may be wrong")
        return np.zeros(3), np.eye(3), tuple(abs(s) for s in sp)
    m = np.asarray(sd, dtype=float).T              # columns: the vector of each axis
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float).reshape(-1)[:3]
    if space in _SPACE_TO_LPS:
        flip = np.asarray(_SPACE_TO_LPS[space], float)
    else:
        flip = np.ones(3)
        notes.append(f"the file's space is '{header.get('space', header.get('space dimension', '?'))}', not a "
                     "patient space: its axes were taken as LPS (left, posterior, superior)")
    m = m * flip[:, None]
    origin = origin * flip
    spacing = np.linalg.norm(m, axis=0)
    if not np.all(np.isfinite(m)) or not np.all(spacing > 0) or not np.all(np.isfinite(origin)):
        raise _bad(path, "has invalid 'space directions' or 'space origin': its geometry is damaged. Export it "
                         "again")
    return origin, m / spacing, tuple(spacing)


def _data_stream(path: Path, header: dict, header_size: int):
    """(file object positioned at the first data byte, list of things to close)."""
    data_file = header.get("data file", header.get("datafile"))
    if data_file is not None:
        if not isinstance(data_file, str) or data_file.upper().startswith("LIST") or "%" in data_file:
            raise _bad(path, "spreads its data over several files: DentSeg reads one data file; save the volume "
                             "as a single .nrrd")
        target = Path(data_file)
        target = target if target.is_absolute() else path.parent / target
        try:
            raw = open(target, "rb")
        except OSError as exc:
            raise _bad(path, f"names the data file '{target}', which cannot be opened ({exc.strerror}); keep "
                             "the .nhdr and its data file together") from None
    else:
        raw = open(path, "rb")
        raw.seek(header_size)
    for _ in range(int(header.get("line skip", header.get("lineskip", 0)) or 0)):
        raw.readline()
    return raw


def _read_data(path: Path, header: dict, header_size: int, vox: np.ndarray, dtype: np.dtype,
               progress: Progress, notes: list[str]) -> None:
    encoding = str(header.get("encoding", "raw")).lower()
    byte_skip = int(header.get("byte skip", header.get("byteskip", 0)) or 0)
    nz, ny, nx = vox.shape
    slab = nx * ny * dtype.itemsize
    if encoding in ("ascii", "text", "txt", "hex"):
        import nrrd
        data = nrrd.read_data(header, None, str(path), index_order="C") if header.get("data file") else \
            nrrd.read(str(path), index_order="C")[0]
        vox[...] = np.asarray(data).reshape(vox.shape)
        notes.append(f"{encoding} NRRD data read as a whole (slow, and twice the memory)")
        return
    raw = _data_stream(path, header, header_size)
    try:
        if encoding == "raw":
            if byte_skip == -1:
                raw.seek(-slab * nz, 2)
            stream = raw
        elif encoding in ("gzip", "gz"):
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif encoding in ("bzip2", "bz2"):
            stream = bz2.BZ2File(raw, mode="rb")
        else:
            raise _bad(path, f"uses the '{encoding}' encoding, which DentSeg does not read: save it as raw or "
                             "gzip NRRD")
        if byte_skip > 0:
            stream.read(byte_skip)
        for z in range(nz):
            if z % 8 == 0:
                progress(z, nz, f"reading slice {z + 1}/{nz}")
            buf = stream.read(slab)
            if len(buf) < slab:
                raise _bad(path, f"is truncated: its data ends in slice {z + 1} of {nz}. Copy or export the file "
                                 "again")
            vox[z] = np.frombuffer(buf, dtype=dtype).reshape(ny, nx)
    except VolumeError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        text = " ".join(str(exc).split())[:160]
        raise _bad(path, f"cannot be read to the end ({type(exc).__name__}: {text}): the file is truncated or "
                         "damaged. Copy or export it again") from None
    finally:
        raw.close()
    progress(nz, nz, "volume read")


# --------------------------------------------------------------------------- writer


def hu_storage(volume: Volume) -> tuple[np.dtype, bool]:
    """(type of the rescaled values in the file, exact integer rescale?)."""
    vox = volume.voxels
    slope, inter = float(volume.slope), float(volume.intercept)
    if vox.dtype.kind in "iu" and slope == round(slope) and inter == round(inter):
        lo, hi = (float(vox.min()), float(vox.max())) if vox.size else (0.0, 0.0)
        ends = sorted((lo * slope + inter, hi * slope + inter))
        if slope == 1.0 and inter == 0.0:
            return vox.dtype, True
        for t in (np.int16, np.int32):
            info = np.iinfo(t)
            if info.min <= ends[0] and ends[1] <= info.max:
                return np.dtype(t), True
    return np.dtype(np.float32), False


def _vec(v) -> str:
    return "(" + ",".join(repr(float(x)) for x in v) + ")"


def write_nrrd(volume: Volume, path: str | Path, compress: bool = True) -> Path:
    """Write ``volume`` (rescaled values, LPS space) as one ``.nrrd`` file, atomically."""
    path = Path(path)
    out_t, exact = hu_storage(volume)
    nk, nj, ni = volume.shape
    names = {"i1": "int8", "u1": "uint8", "i2": "int16", "u2": "uint16", "i4": "int32", "u4": "uint32",
             "i8": "int64", "u8": "uint64", "f4": "float", "f8": "double"}
    axes = volume.directions * np.asarray(volume.spacing)[None, :]
    lines = ["NRRD0004", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html", "# written by DentSeg",
             f"type: {names[out_t.str[1:]]}", "dimension: 3", "space: left-posterior-superior",
             f"sizes: {ni} {nj} {nk}",
             "space directions: " + " ".join(_vec(axes[:, c]) for c in range(3)),
             "kinds: domain domain domain", "endian: little",
             f"encoding: {'gzip' if compress else 'raw'}", f"space origin: {_vec(volume.origin)}"]
    head = ("\n".join(lines) + "\n\n").encode("ascii")
    le = out_t.newbyteorder("<")

    def write(f) -> None:
        f.write(head)
        stream = gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1, mtime=0) if compress else f
        for k in range(nk):
            plane = volume.voxels[k]
            if volume.slope != 1.0 or volume.intercept != 0.0:
                plane = plane.astype(np.float64 if exact else np.float32) * volume.slope + volume.intercept
            stream.write(np.ascontiguousarray(plane, dtype=le).tobytes())
        if compress:
            stream.close()

    atomic_write_with(path, write)
    return path
