"""Saving and loading LU-Net weights with torch, through the model-file protocol.

A model file ``NAME.pt`` holds only plain data (strings, numbers, lists and
tensors), so it is read with ``torch.load(weights_only=True)``, which refuses
to unpickle arbitrary objects; before that, ``model_file.read_header`` has
already refused anything naming code, without torch. The model card
``NAME.model-card.json`` (architecture, classes, canonical spacing, training,
metrics) carries the sha256 of the weights and of the ONNX export
``NAME.onnx``; the three are written as one unit (``model_file.commit_model_set``,
docs/adr/0010), so a kill never leaves a mismatched set.

Loading refuses, with one line: a file that is not ours, a hash that does not
match the card, an architecture out of range, a state dict of another network,
and weights that are not finite. A model without a card loads as an
"unverified model" (``ModelSet.notes``), which predictions carry in their
provenance.
"""

from __future__ import annotations

import datetime as _dt
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from ..core.errors import ModelError
from .lunet import CLASSES, LANDMARK_NAMES, LUNet, build_model, count_parameters
from .model_file import (CARD_FORMAT, CARD_SUFFIX, FILE_FORMAT, FILE_VERSION, ModelSet,  # noqa: F401
                         card_path_for, card_to_update, commit_model_set, onnx_path_for, read_card,
                         resolve_model_set, sha256_of, write_card)


# --------------------------------------------------------------------------- save


def weights_bytes(model: LUNet) -> bytes:
    """The bytes of a weights file for ``model``; refuses a model that is not finite."""
    sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelError(f"the model's weights are not finite (NaN or infinity in {', '.join(bad[:3])}); "
                         "it was not saved")
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, "arch": model.arch_name,
               "arch_args": model.constructor_args(), "state_dict": sd}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_model(model: LUNet, path: str | Path, card: dict[str, Any] | None = None,
               onnx: tuple[bytes, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write the weights, the card (and ``onnx``: the bytes and card entry of an ONNX export,
    ``export_onnx.save_model_with_onnx`` makes them) as one unit; return the card.

    ``card`` holds the descriptive fields (name, canonical spacing, input size,
    training data, metrics, ...); the architecture, size and hash fields are
    filled in here so they always describe the files actually written.
    """
    path = Path(path)
    data = weights_bytes(model)
    full = dict(card or {})
    full.update({
        "card_version": 2,
        "architecture": model.arch_name,
        "arch_args": model.constructor_args(),
        "classes": list(CLASSES),
        "landmarks": list(LANDMARK_NAMES),
        "n_params": count_parameters(model),
    })
    full.setdefault("name", path.stem)
    full.setdefault("version", "1")
    full.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    onnx_data, onnx_info = onnx if onnx is not None else (None, None)
    return commit_model_set(path, data, full, onnx_data, onnx_info)


# --------------------------------------------------------------------------- load


def load_model(path: str | Path, require_card: bool = False) -> tuple[LUNet, dict[str, Any], str]:
    """Load and verify a model file; return (model in eval mode, card, sha256 of the file).

    Raises ``ModelError`` when the file is missing, is not a DentSeg model file,
    fails the sha256 check of its card, or does not fit the architecture it names.
    Without a card, the card returned is rebuilt from the file's own header.
    """
    model, model_set = load_model_set(path, require_card=require_card)
    return model, model_set.card, model_set.sha256


def load_model_set(path: str | Path, require_card: bool = False) -> tuple[LUNet, ModelSet]:
    """``load_model`` that also returns the ``ModelSet`` (ONNX file, unverified-model notes)."""
    model_set = resolve_model_set(path, require_card=require_card)
    name = Path(path).name
    payload = _read_payload(model_set.weights_path, name)
    try:
        model = build_model(payload["arch"], payload["arch_args"])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model file {name} names an architecture DentSeg cannot build ({exc})") from None
    _check_state_dict(model, payload["state_dict"], name)
    model.load_state_dict(payload["state_dict"], strict=True)
    model.eval()
    return model, model_set


def _read_payload(path: Path, name: str) -> dict[str, Any]:
    not_ours = (f"{name} is not a DentSeg model file (expected a LU-Net weights file written by "
                "'dentseg train' or the GUI's training panel)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but plain data; say so without echoing internals
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ModelError(f"{name}: refused: contains code; DentSeg loads only plain weights files") from None
        raise ModelError(f"{not_ours}; it cannot be read ({str(exc).splitlines()[0][:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, UnicodeDecodeError, AttributeError,
            ImportError, IndexError, KeyError, TypeError) as exc:
        raise ModelError(f"{not_ours}; it is not a readable torch weights file "
                         f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ModelError(not_ours)
    sd = payload.get("state_dict")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"{not_ours}; its 'state_dict' is not a mapping of names to tensors")
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelError(f"model file {name} is not finite (NaN or infinity in {', '.join(bad[:3])}); "
                         "retrain it or choose another model")
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
