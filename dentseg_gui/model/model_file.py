"""Model files on disk, without torch: the card, the commit protocol, checks before loading.

A DentSeg model is a set of files beside each other (docs/adr/0010)::

    NAME.pt               the weights (torch.save of plain data: header + state_dict)
    NAME.onnx             the same network, BatchNorm folded, for ONNX Runtime (optional)
    NAME.model-card.json  what the model is, and the sha256 of each file above

**The card is the commit record.** ``commit_model_set`` writes every data file first
under a fixed pending name (``.NAME.pt.pending``, complete and fsynced), then
replaces the card atomically - that one rename is the commit - and only then
moves the pending files over the final names. A reader trusts a file only when
its sha256 is the card's; if the final file does not match but the pending one
does, the commit happened and the rename did not (a kill): the reader finishes it
(or reads the pending file where the folder is read-only). So whatever moment a
writer is killed at, a reader sees the old set or the new set, never a mix.

``inspect_model_file`` is the one check the app runs when the user chooses a model
file: a file that is not ours gets "not a DentSeg model file", a pickle that would
run code gets "refused: contains code" (found by a restricted unpickler that never
imports or calls anything), an architecture out of range (a crafted card asking for
terabytes) is refused, and a model without a card is reported as unverified.
Every message is one line naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.atomic import atomic_write_bytes, atomic_write_text
from ..core.errors import ModelError
from .labels import CLASSES, LANDMARK_NAMES

FILE_FORMAT = "dentseg-lunet-weights"
FILE_VERSION = 1
CARD_FORMAT = "dentseg-model-card"
CARD_SUFFIX = ".model-card.json"
ONNX_SUFFIX = ".onnx"
#: the note a prediction carries when its model had no card to check it against
UNVERIFIED_NOTE = "unverified model"

#: architecture arguments DentSeg accepts (anything else is a damaged or crafted file)
MAX_LEVELS = 6
MAX_WIDTH = 512
MAX_PARAMS = 50_000_000           # 200 MB of float32: 85x the bundled model
ARCH_NAMES = ("LUNet", "PlainUNet", "MonaiBasicUNet")
#: largest model file read at all (the bundled one is 2.4 MB)
MAX_FILE_BYTES = 1 << 30


def card_path_for(model_path: str | Path) -> Path:
    """``lunet.pt`` -> ``lunet.model-card.json`` beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + CARD_SUFFIX) if p.suffix else p.with_name(p.name + CARD_SUFFIX)


def onnx_path_for(model_path: str | Path) -> Path:
    """``lunet.pt`` -> ``lunet.onnx`` beside it."""
    p = Path(model_path)
    return p.with_suffix(ONNX_SUFFIX) if p.suffix else p.with_name(p.name + ONNX_SUFFIX)


def pending_path_for(path: str | Path) -> Path:
    """Where a data file waits between being written and its card's commit."""
    p = Path(path)
    return p.with_name(f".{p.name}.pending")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- card


def read_card(model_path: str | Path) -> dict[str, Any] | None:
    """The model card beside ``model_path``, or None when there is none."""
    cp = card_path_for(model_path)
    if not cp.is_file():
        return None
    try:
        if cp.stat().st_size > 16 << 20:
            raise ModelError(f"model card {cp.name} is {cp.stat().st_size >> 20} MB, not a model card")
        card = json.loads(cp.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"model card {cp.name} is not valid JSON ({str(exc)[:120]}); restore it or delete "
                         "it to load the weights as an unverified model") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelError(f"{cp.name} is not a DentSeg model card (field 'format' must be {CARD_FORMAT!r})")
    return card


def write_card(model_path: str | Path, card: dict[str, Any]) -> Path:
    """(Re)write the card beside ``model_path`` atomically, keeping the files it names.

    For fields that describe the model (held-out metrics, calibration); the files'
    hashes must stay those of the files on disk (``card_to_update`` checks that).
    """
    cp = card_path_for(model_path)
    atomic_write_text(cp, json.dumps(card, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return cp


def card_to_update(model_path: str | Path, what: str) -> dict[str, Any]:
    """The card of ``model_path``, checked against the weights, before recording ``what`` in it."""
    model_set = resolve_model_set(model_path)
    if not model_set.verified:
        raise ModelError(f"model file {Path(model_path).name} has no model card to record {what} in")
    return model_set.card


def print_card_entry(record: Callable[[], dict[str, Any]]) -> int:
    """The end of a command that records an entry in a model card (calibration, held-out metrics,
    plausibility thresholds): the entry printed as JSON and status 0, or the error as one line on
    stderr and status 2."""
    from ..core.errors import DentsegError

    try:
        entry = record()
    except DentsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(entry, indent=1))
    return 0


# --------------------------------------------------------------------------- commit


def commit_model_set(model_path: str | Path, weights: bytes, card: dict[str, Any],
                     onnx: bytes | None = None, onnx_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write weights (+ ONNX) and card as one unit; return the card as written.

    ``card`` gets the files' names, sizes and hashes here, so it always describes
    the bytes written. ``onnx`` None writes a set without ONNX (a stale NAME.onnx is
    removed after the commit; a card without an ``onnx`` entry never uses it).
    """
    path = Path(model_path)
    full = dict(card)
    full.update({"format": CARD_FORMAT, "weights_file": path.name, "file_size_bytes": len(weights),
                 "sha256": sha256_bytes(weights)})
    full.pop("onnx", None)
    data_files = [(path, weights)]
    if onnx is not None:
        op = onnx_path_for(path)
        full["onnx"] = dict(onnx_info or {}, file=op.name, size_bytes=len(onnx), sha256=sha256_bytes(onnx))
        data_files.append((op, onnx))
    for final, data in data_files:                     # 1. pending files, complete and fsynced
        if final.is_file() and final.stat().st_size == len(data) and sha256_of(final) == sha256_bytes(data):
            continue                                   # unchanged (e.g. only the ONNX is new)
        atomic_write_bytes(pending_path_for(final), data)
    write_card(path, full)                             # 2. the commit
    for final, _ in data_files:                        # 3. roll forward
        _roll_forward(pending_path_for(final), final)
    if onnx is None:
        for stale in (onnx_path_for(path), pending_path_for(onnx_path_for(path))):
            try:
                stale.unlink()
            except OSError:
                pass
    _fsync_dir(path.parent)
    return full


def _roll_forward(pending: Path, final: Path) -> bool:
    try:
        os.replace(pending, final)
        return True
    except FileNotFoundError:
        return False


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- resolve


@dataclass
class ModelSet:
    """The verified files of one model, as found on disk."""

    weights_path: Path                     # the .pt (possibly a pending file being rolled forward)
    card: dict[str, Any]                   # the card (rebuilt from the file's header when it has none)
    sha256: str                            # of the weights file
    verified: bool                         # True: the card's hash matched; False: no card
    onnx_path: Path | None = None          # None: no verified ONNX (reason in ``onnx_note``)
    onnx_note: str | None = None
    notes: list[str] = field(default_factory=list)   # what the user must see (unverified model)

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.weights_path.stem)


def resolve_model_set(model_path: str | Path, require_card: bool = False) -> ModelSet:
    """Find, verify and (after a killed commit) complete the model set of ``model_path``.

    Raises ``ModelError`` (one line) for a missing, foreign, code-carrying, corrupt or
    out-of-range model. The ONNX file is optional: when it is absent or does not match
    the card, ``onnx_path`` is None and ``onnx_note`` says why (the caller runs torch).
    """
    path = Path(model_path)
    name = path.name
    if not path.is_file() and not pending_path_for(path).is_file():
        raise ModelError(f"model file {path} not found; choose an existing .pt model file")
    card = read_card(path)
    if card is None:
        if require_card:
            raise ModelError(f"model file {name} has no model card ({card_path_for(path).name}) beside it; "
                             "the bundled model must ship with its card - reinstall DentSeg")
        header = read_header(path)
        sha = sha256_of(path)
        rebuilt = {"format": CARD_FORMAT, "name": path.stem, "architecture": header["arch"],
                   "arch_args": header["arch_args"], "classes": list(CLASSES),
                   "landmarks": list(LANDMARK_NAMES), "sha256": sha,
                   "note": "no model card found beside the weights file; hash not verified"}
        note = (f"{UNVERIFIED_NOTE}: {name} has no model card, so DentSeg cannot check that it is "
                "the file that was trained")
        return ModelSet(path, rebuilt, sha, False, None, "unverified models run on torch", [note])
    want = card.get("sha256")
    weights = _matching_file(path, want)
    if weights is None:
        raise ModelError(f"model file {name} is corrupt: its sha256 does not match its model card "
                         f"({card_path_for(path).name}); the file was changed or damaged after it was "
                         "saved - restore it, or retrain")
    check_architecture(card.get("architecture"), card.get("arch_args"), f"model card {card_path_for(path).name}")
    header = read_header(weights)
    if card.get("architecture") != header["arch"] or card.get("arch_args") != header["arch_args"]:
        raise ModelError(f"model file {name} does not match its model card: the card says "
                         f"{card.get('architecture')} {card.get('arch_args')}, the file holds "
                         f"{header['arch']} {header['arch_args']}")
    onnx_path, onnx_note = None, None
    entry = card.get("onnx")
    if not isinstance(entry, dict) or not entry.get("sha256"):
        onnx_note = f"the model card of {name} names no ONNX export"
    else:
        op = path.with_name(Path(str(entry.get("file") or onnx_path_for(path).name)).name)
        onnx_path = _matching_file(op, entry["sha256"])
        if onnx_path is None:
            onnx_note = (f"{op.name} is missing" if not op.exists() and not pending_path_for(op).exists()
                         else f"{op.name} does not match the sha256 in the model card")
    return ModelSet(weights, card, want, True, onnx_path, onnx_note, [])


def _matching_file(final: Path, sha: Any) -> Path | None:
    """``final`` when its sha256 is ``sha``; else its pending file (rolled forward when possible)."""
    if not isinstance(sha, str):
        return None
    for _ in range(2):          # a writer may be renaming between the two checks: look again
        try:
            if sha256_of(final) == sha:
                return final
        except OSError:
            pass
        pending = pending_path_for(final)
        try:
            if sha256_of(pending) == sha:
                if _try_roll_forward(pending, final):
                    return final
                return pending
        except OSError:
            pass
    return None


def _try_roll_forward(pending: Path, final: Path) -> bool:
    try:
        os.replace(pending, final)
        return True
    except OSError:
        return False          # read-only folder: read the pending file where it is


# --------------------------------------------------------------------------- checks


def size_multiple_for(arch: str, args: dict[str, Any]) -> int:
    """Input height and width must be multiples of this."""
    if arch == "MonaiBasicUNet":
        return 16
    return 2 ** (len(args.get("widths") or (16, 32, 64, 128)) - 1)


def check_architecture(arch: Any, args: Any, where: str) -> None:
    """Refuse architecture arguments DentSeg would never write (one line, no traceback)."""
    if arch not in ARCH_NAMES:
        raise ModelError(f"{where} names an unknown architecture {arch!r}; known: {', '.join(ARCH_NAMES)}")
    if not isinstance(args, dict):
        raise ModelError(f"{where}: architecture arguments must be a mapping, got {type(args).__name__}")
    allowed = {"in_channels", "num_classes", "num_landmarks"} | ({"widths"} if arch != "MonaiBasicUNet" else set())
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ModelError(f"{where}: unknown architecture arguments {', '.join(map(str, unknown))[:120]}")
    fixed = {"in_channels": 1, "num_classes": len(CLASSES), "num_landmarks": len(LANDMARK_NAMES)}
    for key, value in fixed.items():
        if key in args and (type(args[key]) is not int or args[key] != value):
            raise ModelError(f"{where}: {key} must be {value} for DentSeg, got {str(args[key])[:40]}")
    if arch == "MonaiBasicUNet":
        return
    widths = args.get("widths", [16, 32, 64, 128])
    if (not isinstance(widths, (list, tuple)) or not 2 <= len(widths) <= MAX_LEVELS
            or not all(type(w) is int and 1 <= w <= MAX_WIDTH for w in widths)):
        raise ModelError(f"{where}: widths must be 2 to {MAX_LEVELS} channel counts of 1 to {MAX_WIDTH}, "
                         f"got {str(widths)[:80]} - the file is damaged or was not written by DentSeg")
    n = estimate_parameters(list(widths))
    if n > MAX_PARAMS:
        raise ModelError(f"{where}: the architecture asks for {n:,} parameters "
                         f"(at most {MAX_PARAMS:,}); refused")


def estimate_parameters(widths: list[int]) -> int:
    """Parameters of an LU-Net with these widths (an upper bound for the plain U-Net)."""
    def dc(cin: int, cout: int) -> int:          # two 3x3 conv (no bias) + BN
        return 9 * cin * cout + 9 * cout * cout + 4 * cout
    n, cin = 0, 1
    for w in widths[:-1]:
        n += dc(cin, w) + dc(w, w)               # encoder + skip path
        cin = w
    n += dc(widths[-2], widths[-1])
    for k in reversed(range(len(widths) - 1)):
        n += 4 * widths[k + 1] * widths[k] + widths[k] + dc(2 * widths[k], widths[k])
    w0 = widths[0]
    return n + w0 * 3 + 3 + 9 * w0 * w0 + 2 * w0 + w0 * 3 + 3


# --------------------------------------------------------------------------- safe header


class _Code(Exception):
    """The pickle names something other than plain data."""


class _TensorStub:
    """Stands for a tensor in a header read without torch: shape only, no data."""

    def __init__(self, shape: Any = ()) -> None:
        self.shape = tuple(shape) if isinstance(shape, (tuple, list)) else ()


def _rebuild_tensor(storage: Any, offset: Any = 0, size: Any = (), *rest: Any) -> _TensorStub:
    return _TensorStub(size)


class _PlainDict(dict):
    """A dict that accepts the attributes torch pickles on an OrderedDict (``_metadata``)."""


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name


#: what torch itself writes into a weights file (its ``weights_only`` allow-list, reduced)
_ALLOWED = {
    ("collections", "OrderedDict"): _PlainDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): lambda data, *a: data,
}
_TORCH_TYPES = {"FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
                "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
                "UntypedStorage", "float32", "float64", "float16", "bfloat16", "int64", "int32",
                "int16", "int8", "uint8", "bool"}


class _HeaderUnpickler(pickle.Unpickler):
    """Unpickles plain data; any other global (a function, a class: code) raises ``_Code``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_TYPES:
            return _Marker(name)
        raise _Code(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return _Marker("storage")


def read_header(path: str | Path) -> dict[str, Any]:
    """Read a weights file's header (format, version, arch, arch_args) without torch.

    Refuses, with one line: a file that is not a DentSeg weights file, a pickle
    that names code (nothing is imported or called to find out), an unknown
    version, or architecture arguments out of range.
    """
    path = Path(path)
    name = path.name
    not_ours = (f"{name} is not a DentSeg model file (expected a LU-Net weights file written by "
                "'dentseg train' or the GUI's training panel)")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelError(f"{not_ours}: it is {size >> 20} MB")
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as z:
                pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
                if len(pkl) != 1:
                    raise ModelError(not_ours)
                info = z.getinfo(pkl[0])
                if info.file_size > 64 << 20:
                    raise ModelError(f"{not_ours}: its header is {info.file_size >> 20} MB")
                data = z.read(pkl[0])
        elif head[:1] == b"\x80":
            data = path.read_bytes()
        else:
            raise ModelError(not_ours)
    except ModelError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError) as exc:
        raise ModelError(f"{not_ours} ({type(exc).__name__})") from None
    try:
        payload = _HeaderUnpickler(io.BytesIO(data)).load()
    except _Code as exc:
        raise ModelError(f"{name}: refused: contains code (the file asks to run {str(exc)[:80]}); DentSeg "
                         "loads only plain weights files - do not use this file") from None
    except RecursionError:
        raise ModelError(f"{not_ours} (nested too deeply)") from None
    except Exception:  # noqa: BLE001 - any malformed pickle: it is not ours
        raise ModelError(not_ours) from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ModelError(not_ours)
    if payload.get("version") != FILE_VERSION:
        raise ModelError(f"model file {name} has format version {str(payload.get('version'))[:20]}; this "
                         f"DentSeg reads version {FILE_VERSION} - update DentSeg or retrain the model")
    check_architecture(payload.get("arch"), payload.get("arch_args"), f"model file {name}")
    sd = payload.get("state_dict")
    if not isinstance(sd, dict) or not all(isinstance(v, _TensorStub) for v in sd.values()):
        raise ModelError(f"{not_ours}; its 'state_dict' is not a mapping of names to tensors")
    return {"format": payload["format"], "version": payload["version"], "arch": payload["arch"],
            "arch_args": payload["arch_args"],
            "shapes": {str(k): v.shape for k, v in sd.items()}}


# --------------------------------------------------------------------------- the app's check


@dataclass
class ModelFileInfo:
    """What the app shows about a model file the user chose."""

    path: Path
    name: str
    architecture: str
    verified: bool
    has_onnx: bool
    notes: list[str]

    def line(self) -> str:
        """One status line, e.g. for the model label or a message box."""
        bits = [self.name, self.architecture]
        bits += self.notes
        if self.verified and not self.has_onnx:
            bits.append("runs on torch (no ONNX export)")
        return ", ".join(bits)


def inspect_model_file(path: str | Path) -> ModelFileInfo:
    """Check a model file the user chose, without torch and without running anything.

    Raises ``ModelError`` with one line (not found, not a DentSeg model file, refused:
    contains code, corrupt, architecture out of range); an acceptable file without a
    model card is returned with ``verified`` False and the "unverified model" note.
    A chosen ``.onnx`` or card file stands for the ``.pt`` beside it.
    """
    p = Path(path).expanduser()
    if p.name.endswith(CARD_SUFFIX):
        p = p.with_name(p.name[: -len(CARD_SUFFIX)] + ".pt")
    elif p.suffix == ONNX_SUFFIX:
        p = p.with_suffix(".pt")
    ms = resolve_model_set(p)
    return ModelFileInfo(p, ms.name, str(ms.card.get("architecture")), ms.verified,
                         ms.onnx_path is not None, list(ms.notes))
