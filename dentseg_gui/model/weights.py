"""Safe model files: a plain dict of tensors (``torch.save``) plus a JSON model card beside it.

A model file ``NAME.pt`` holds only plain data (strings, numbers, lists and
tensors), so it is read with ``torch.load(weights_only=True)``, which refuses
to unpickle arbitrary objects: opening a model file can never run code.
The model card ``NAME.model-card.json`` says what the model is (architecture
and constructor arguments, classes, landmarks, canonical spacing, input size,
training data and command, held-out metrics, size) and carries the sha256 of
the weights file; loading checks that hash, so a corrupted or swapped weights
file is refused with a clear message instead of giving silently wrong output.

The architecture is also stored inside the weights file, so a model file that
lost its card still loads (without the hash check); the bundled model always
has its card.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import atomic_write_bytes, atomic_write_text
from ..core.errors import ModelError
from .lunet import ARCHITECTURES, CLASSES, LANDMARK_NAMES, LUNet, build_model, count_parameters

FILE_FORMAT = "dentseg-lunet-weights"
FILE_VERSION = 1
CARD_FORMAT = "dentseg-model-card"
CARD_SUFFIX = ".model-card.json"


def card_path_for(model_path: str | Path) -> Path:
    """``lunet.pt`` -> ``lunet.model-card.json`` beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + CARD_SUFFIX) if p.suffix else p.with_name(p.name + CARD_SUFFIX)


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- save


def save_model(model: LUNet, path: str | Path, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the weights file and its model card atomically; return the card as written.

    ``card`` holds the descriptive fields (name, canonical spacing, input size,
    training data, metrics, ...); the architecture, size and hash fields are
    filled in here so they always describe the file actually written.
    """
    path = Path(path)
    payload = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "arch": model.arch_name,
        "arch_args": model.constructor_args(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    full = dict(card or {})
    full.update({
        "format": CARD_FORMAT,
        "card_version": 1,
        "weights_file": path.name,
        "architecture": model.arch_name,
        "arch_args": model.constructor_args(),
        "classes": list(CLASSES),
        "landmarks": list(LANDMARK_NAMES),
        "n_params": count_parameters(model),
        "file_size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    })
    full.setdefault("name", path.stem)
    full.setdefault("version", "1")
    full.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    write_card(path, full)
    return full


def write_card(model_path: str | Path, card: dict[str, Any]) -> Path:
    """(Re)write the model card beside ``model_path`` atomically (e.g. to add held-out metrics)."""
    cp = card_path_for(model_path)
    atomic_write_text(cp, json.dumps(card, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return cp


def read_card(model_path: str | Path) -> dict[str, Any] | None:
    """The model card beside ``model_path``, or None when there is none."""
    cp = card_path_for(model_path)
    if not cp.is_file():
        return None
    try:
        card = json.loads(cp.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model card {cp.name} is not valid JSON ({exc}); restore it or delete it "
                         "to load the weights without a hash check") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelError(f"{cp.name} is not a DentSeg model card (field 'format' must be {CARD_FORMAT!r})")
    return card


def card_to_update(model_path: str | Path, what: str) -> dict[str, Any]:
    """The card of ``model_path``, checked against the weights, before recording ``what`` in it."""
    card = read_card(model_path)
    if card is None:
        raise ModelError(f"model file {Path(model_path).name} has no model card to record {what} in")
    if card.get("sha256") != sha256_of(model_path):
        raise ModelError(f"model file {Path(model_path).name} is corrupt: its sha256 does not match its model card")
    return card


# --------------------------------------------------------------------------- load


def load_model(path: str | Path, require_card: bool = False) -> tuple[LUNet, dict[str, Any], str]:
    """Load and verify a model file; return (model in eval mode, card, sha256 of the file).

    Raises ``ModelError`` when the file is missing, is not a DentSeg model file,
    fails the sha256 check of its card, or does not fit the architecture it names.
    Without a card, the card returned is rebuilt from the file's own header.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ModelError(f"model file {path} not found; choose an existing .pt model file")
    card = read_card(path)
    if card is None and require_card:
        raise ModelError(f"model file {name} has no model card ({card_path_for(path).name}) beside it; "
                         "the bundled model must ship with its card - reinstall DentSeg")
    sha = sha256_of(path)
    if card is not None and card.get("sha256") != sha:
        raise ModelError(f"model file {name} is corrupt: its sha256 does not match its model card "
                         f"({card_path_for(path).name}); the file was changed or damaged after it was "
                         "saved - restore it, or retrain")
    payload = _read_payload(path)
    arch, args = payload["arch"], payload["arch_args"]
    if card is not None and (card.get("architecture") != arch or card.get("arch_args") != args):
        raise ModelError(f"model file {name} does not match its model card: the card says "
                         f"{card.get('architecture')} {card.get('arch_args')}, the file holds {arch} {args}")
    try:
        model = build_model(arch, args)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model file {name} names an architecture DentSeg cannot build ({exc})") from None
    _check_state_dict(model, payload["state_dict"], name)
    model.load_state_dict(payload["state_dict"], strict=True)
    model.eval()
    if card is None:
        card = {"format": CARD_FORMAT, "name": path.stem, "architecture": arch, "arch_args": args,
                "classes": list(CLASSES), "landmarks": list(LANDMARK_NAMES), "sha256": sha,
                "note": "no model card found beside the weights file; hash not verified"}
    return model, card, sha


def _read_payload(path: Path) -> dict[str, Any]:
    name = path.name
    not_ours = (f"{name} is not a DentSeg model file (expected a LU-Net weights file written by "
                "'dentseg train' or the GUI's training panel)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but plain data; say so without echoing internals
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ModelError(f"{not_ours}; it contains Python objects other than tensors, which DentSeg "
                             "refuses to load for safety (weights_only)") from None
        raise ModelError(f"{not_ours}; it cannot be read ({str(exc).splitlines()[0][:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, UnicodeDecodeError, AttributeError,
            ImportError, IndexError, KeyError, TypeError) as exc:
        raise ModelError(f"{not_ours}; it is not a readable torch weights file "
                         f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ModelError(not_ours)
    if payload.get("version") != FILE_VERSION:
        raise ModelError(f"model file {name} has format version {payload.get('version')!r}; this DentSeg "
                         f"reads version {FILE_VERSION} - update DentSeg or retrain the model")
    if payload.get("arch") not in ARCHITECTURES or not isinstance(payload.get("arch_args"), dict):
        raise ModelError(f"model file {name} names an unknown architecture {payload.get('arch')!r}; "
                         f"known: {', '.join(ARCHITECTURES)}")
    sd = payload.get("state_dict")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"{not_ours}; its 'state_dict' is not a mapping of names to tensors")
    return payload


def _check_state_dict(model: LUNet, sd: dict[str, torch.Tensor], name: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} (file {tuple(sd[k].shape)}, {model.display_name} {tuple(v.shape)})"
             for k, v in expected.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_short(unexpected)}")
        if wrong:
            parts.append(f"wrong shape for {_short(wrong)}")
        raise ModelError(f"model file {name} does not fit {model.display_name}: " + "; ".join(parts)
                         + " - it was saved from a different network; retrain or pick another file")


def _short(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
