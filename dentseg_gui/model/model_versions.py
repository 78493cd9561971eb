"""Model versions in the user data folder, and which model each folder of cases uses.

Every model fine-tuned from the app is kept as a **version**: an immutable folder ::

    <root>/model-versions/<id>/
        NAME.pt, NAME.model-card.json (, NAME.onnx)   the model set, copied as trained
        version.json                                   what it is (below)

``version.json`` records the model's sha256 (the card's), the cases it was trained on
(image and annotation paths, and the sha256 of each annotation file as it was when the
run started), the settings used (the card's resolved training settings and the run's
``TrainConfig``), the model it was started from, the date, and - once it was compared
with the model it would replace - the evaluation (``model_eval.compare_models``).

A version is written into a hidden temporary folder (every file atomically), checked,
and then renamed into place in one step, so a kill leaves either no version or a whole
one. It is used only through ``verified_model_path``: the card must be there
(``model_file.resolve_model_set(require_card=True)``) and its sha256 must be the one
recorded when the version was made; the network itself is then loaded the normal
way (weights only, checked card). A damaged version folder gives one line naming the
folder and what to do; listing skips it with that line.

**Folder choices** (``<root>/model-versions/folder-models.json``): the model a folder's
cases are predicted with when the user chose one for it ("Use the new model for this
folder", Model › Versions). A folder without a choice uses the app's default model;
a choice never applies to another folder.

A version can be renamed (its id and folder stay, so choices keep pointing at it) and
deleted: the folders that used it go back to the app default first, then its folder is
renamed out of the list in one step and removed.

Qt-free and torch-free (paths, JSON, hashes); the GUI passes its user data folder.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..core.atomic import atomic_write_bytes, atomic_write_text
from ..core.errors import DentsegError, ModelError
from .model_file import card_path_for, onnx_path_for, resolve_model_set, sha256_bytes, sha256_of

VERSIONS_DIR = "model-versions"
RECORD_NAME = "version.json"
RECORD_FORMAT = "dentseg-model-version"
FOLDERS_NAME = "folder-models.json"
FOLDERS_FORMAT = "dentseg-folder-models"
MAX_RECORD_BYTES = 32 << 20
MAX_NAME_CHARS = 120


class ModelVersionError(DentsegError):
    """A model version that cannot be used (missing, damaged, or its files changed)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def folder_key(folder: str | os.PathLike) -> str:
    """The key of a folder of cases: its absolute, resolved path."""
    try:
        return str(Path(folder).expanduser().resolve())
    except OSError:
        return str(Path(folder).expanduser().absolute())


def _safe(text: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-.") or "model")[:60]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if v is None or isinstance(v, (str, int, bool)):
        return v
    if hasattr(v, "item"):              # numpy scalars
        return _jsonable(v.item())
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return _jsonable(dataclasses.asdict(v))
    return str(v)


# --------------------------------------------------------------------------- training cases


def describe_training_cases(image_paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """(image, annotation, annotation sha256) of each case, read now (call it when a run starts,
    so the record says which version of each annotation the model learnt from)."""
    from ..core.annotation import annotation_path_for

    out = []
    for p in image_paths:
        img = Path(p).resolve()
        ann = annotation_path_for(img)
        try:
            sha = sha256_of(ann)
        except OSError:
            sha = None
        out.append({"image": str(img), "annotation": str(ann), "annotation_sha256": sha})
    return out


# --------------------------------------------------------------------------- a version


@dataclass
class ModelVersion:
    id: str
    dir: Path
    name: str
    created: str
    model_file: str                   # file name of the weights inside ``dir``
    sha256: str                       # of the weights, as the card says
    parent: dict[str, Any]            # the model it was started from (kind, name, path, sha256)
    training_cases: list[dict[str, Any]]
    settings: dict[str, Any]
    folder: str | None = None         # the folder of cases it was made for (evaluated on)
    evaluation: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return self.dir / self.model_file

    def training_images(self) -> list[str]:
        return [str(c.get("image")) for c in self.training_cases if c.get("image")]

    def line(self) -> str:
        """One line for a menu: name, date, number of cases, Dice of the evaluation if any."""
        when = self.created[:16].replace("T", " ")
        bits = [self.name, when, f"{len(self.training_cases)} training case(s)"]
        s = ((self.evaluation or {}).get("new") or {}).get("summary") or {}
        if s.get("dice_pab") is not None and s.get("n_cases"):
            bits.append(f"Dice PAB {s['dice_pab']:.3f} on {s['n_cases']} other case(s)")
        return " · ".join(bits)

    def as_record(self) -> dict[str, Any]:
        return _jsonable({"format": RECORD_FORMAT, "id": self.id, "name": self.name, "created": self.created,
                          "model_file": self.model_file, "sha256": self.sha256, "parent": self.parent,
                          "training_cases": self.training_cases, "settings": self.settings,
                          "folder": self.folder, "evaluation": self.evaluation, **self.extra})


def _version_from_record(d: Path, rec: Any) -> ModelVersion:
    where = f"model version folder {d}"
    if not isinstance(rec, dict) or rec.get("format") != RECORD_FORMAT:
        raise ModelVersionError(f"{where}: {RECORD_NAME} is not a DentSeg model-version record; "
                                "delete the folder or restore it from a backup")
    try:
        known = {"format", "id", "name", "created", "model_file", "sha256", "parent", "training_cases",
                 "settings", "folder", "evaluation"}
        model_file = Path(str(rec["model_file"])).name
        if not model_file or not isinstance(rec["sha256"], str):
            raise KeyError("model_file")
        return ModelVersion(id=d.name, dir=d, name=str(rec.get("name") or d.name), created=str(rec.get("created", "")),
                            model_file=model_file, sha256=rec["sha256"], parent=dict(rec.get("parent") or {}),
                            training_cases=list(rec.get("training_cases") or []),
                            settings=dict(rec.get("settings") or {}), folder=rec.get("folder"),
                            evaluation=rec.get("evaluation"),
                            extra={k: v for k, v in rec.items() if k not in known})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelVersionError(f"{where}: {RECORD_NAME} lacks a usable field ({exc}); delete the folder "
                                "or restore it from a backup") from None


def read_version(d: str | os.PathLike) -> ModelVersion:
    """The version in folder ``d`` (its record only; ``verified_model_path`` checks the files)."""
    d = Path(d)
    rec_path = d / RECORD_NAME
    if not rec_path.is_file():
        raise ModelVersionError(f"model version folder {d} has no {RECORD_NAME}; it is incomplete or "
                                "damaged - delete the folder (the other versions are not affected)")
    try:
        if rec_path.stat().st_size > MAX_RECORD_BYTES:
            raise ValueError("too large")
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelVersionError(f"model version folder {d}: {RECORD_NAME} cannot be read ({str(exc)[:100]}); "
                                "delete the folder or restore it from a backup") from None
    return _version_from_record(d, rec)


# --------------------------------------------------------------------------- the registry


@dataclass
class FolderChoice:
    folder: str
    model_path: str | None            # None: the bundled model
    version: str | None               # the version id when the model is a version
    sha256: str | None
    chosen: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ModelRegistry:
    """Model versions and per-folder choices under ``root`` (the user data folder)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.dir = self.root / VERSIONS_DIR

    # ------------------------------------------------------------------ versions
    def _new_id(self, name: str) -> str:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_safe(name)}"
        cand, k = base, 2
        while (self.dir / cand).exists():
            cand = f"{base}-{k}"
            k += 1
        return cand

    def add_version(self, model_path: str | os.PathLike, training_cases: list[dict[str, Any]],
                    parent: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
                    folder: str | os.PathLike | None = None, name: str | None = None) -> ModelVersion:
        """Copy a trained model set (weights, card, ONNX if its card names one) into a new version.

        The source must be a verified model (card with a matching sha256): a model without a
        card cannot be a version. ``training_cases``: ``describe_training_cases(...)``.
        """
        src = Path(model_path)
        ms = resolve_model_set(src, require_card=True)       # ModelError names the file
        card = ms.card
        files = [(ms.weights_path, src.name), (card_path_for(src), card_path_for(src).name)]
        if ms.onnx_path is not None:
            files.append((ms.onnx_path, onnx_path_for(src).name))
        vid = self._new_id(name or ms.name)
        tmp = self.dir / f".{vid}.tmp"
        final = self.dir / vid
        self.dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        train_info = card.get("training") if isinstance(card.get("training"), dict) else {}
        version = ModelVersion(
            id=vid, dir=final, name=name or ms.name, created=_now(), model_file=src.name, sha256=ms.sha256,
            parent=dict(parent or train_info.get("fine_tuned_from") or {}),
            training_cases=list(training_cases),
            settings=dict(settings or {}, resolved=train_info.get("settings"), config=train_info.get("config")),
            folder=folder_key(folder) if folder else None)
        try:
            for path, target in files:
                data = path.read_bytes()
                if path == ms.weights_path and sha256_bytes(data) != ms.sha256:
                    raise ModelError(f"model file {src.name} changed while it was being versioned; try again")
                atomic_write_bytes(tmp / target, data)
            atomic_write_text(tmp / RECORD_NAME, json.dumps(version.as_record(), indent=1, allow_nan=False) + "\n")
            resolve_model_set(tmp / src.name, require_card=True)     # the copy verifies
            os.replace(tmp, final)                                   # the commit: one rename
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return version

    def list_versions(self) -> tuple[list[ModelVersion], dict[str, str]]:
        """(versions newest first, {folder name: why it cannot be used} for damaged ones)."""
        versions: list[ModelVersion] = []
        broken: dict[str, str] = {}
        if not self.dir.is_dir():
            return versions, broken
        for d in sorted(self.dir.iterdir()):
            if not d.is_dir() or d.name.startswith("."):
                continue
            try:
                versions.append(read_version(d))
            except ModelVersionError as exc:
                broken[d.name] = str(exc)
        versions.sort(key=lambda v: (v.created, v.id), reverse=True)
        return versions, broken

    def get(self, version_id: str) -> ModelVersion:
        d = self.dir / Path(str(version_id)).name
        if not d.is_dir():
            raise ModelVersionError(f"model version {version_id} not found in {self.dir}; it was deleted - "
                                    "choose another model in Model › Versions")
        return read_version(d)

    def verified_model_path(self, version_id: str) -> Path:
        """The version's weights file, after checking card and hash (``ModelVersionError`` if not)."""
        v = self.get(version_id)
        try:
            ms = resolve_model_set(v.model_path, require_card=True)
        except ModelError as exc:
            raise ModelVersionError(f"model version {v.id} ({v.dir}) cannot be used: {exc}") from None
        if ms.sha256 != v.sha256:
            raise ModelVersionError(f"model version {v.id} ({v.dir}) cannot be used: its model card names "
                                    "other weights than the version recorded; the folder was changed - "
                                    "delete it, or restore it from a backup")
        return v.model_path

    def record_evaluation(self, version_id: str, evaluation: dict[str, Any]) -> ModelVersion:
        """Store the comparison of this version with the model it would replace."""
        v = self.get(version_id)
        v.evaluation = _jsonable(evaluation)
        atomic_write_text(v.dir / RECORD_NAME, json.dumps(v.as_record(), indent=1, allow_nan=False) + "\n")
        return v

    def rename_version(self, version_id: str, name: str) -> ModelVersion:
        """Give a version another display name (its id and folder stay: choices keep pointing at it)."""
        name = " ".join(str(name).split())
        if not name:
            raise ModelVersionError("a model version needs a name; type one, or cancel")
        if len(name) > MAX_NAME_CHARS:
            raise ModelVersionError(f"a model version name has at most {MAX_NAME_CHARS} characters")
        v = self.get(version_id)
        v.name = name
        atomic_write_text(v.dir / RECORD_NAME, json.dumps(v.as_record(), indent=1, allow_nan=False) + "\n")
        return v

    def folders_by_version(self) -> dict[str, list[str]]:
        """{version id: the folders whose chosen model it is}, read once for a whole list."""
        return _folders_by_version(self._read_folders())

    def folders_using(self, version_id: str) -> list[str]:
        """The folders whose cases are predicted with this version (their chosen model)."""
        return self.folders_by_version().get(Path(str(version_id)).name, [])

    def delete_version(self, version_id: str) -> list[str]:
        """Delete a version (also a damaged one); returns the folders that used it.

        Those folders' choices are removed first - they go back to the app default model, never
        to a dangling version - and then the version folder is renamed out of the list in one
        step and removed, so a kill half-way leaves no half version in the list.
        """
        vid = Path(str(version_id)).name
        d = self.dir / vid
        if not vid or vid.startswith(".") or not d.is_dir():
            raise ModelVersionError(f"model version {version_id} not found in {self.dir}; it was already deleted")
        folders = self._read_folders()
        users = _folders_by_version(folders).get(vid, [])
        if users:
            for f in users:
                folders.pop(f, None)
            self._write_folders(folders)
        trash = self.dir / f".{vid}.deleting"
        shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(d, trash)
        except OSError as exc:
            raise ModelVersionError(f"model version {vid} could not be deleted ({exc.strerror or exc}); "
                                    "close any program that uses its files and try again") from None
        shutil.rmtree(trash, ignore_errors=True)
        return users

    # ------------------------------------------------------------------ folder choices
    def _folders_path(self) -> Path:
        return self.dir / FOLDERS_NAME

    def _read_folders(self) -> dict[str, dict[str, Any]]:
        p = self._folders_path()
        if not p.is_file():
            return {}
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ModelVersionError(f"{p}: the list of models chosen per folder cannot be read ({str(exc)[:100]}); "
                                    "delete the file to choose again") from None
        if not isinstance(data, dict) or data.get("format") != FOLDERS_FORMAT or not isinstance(data.get("folders"), dict):
            raise ModelVersionError(f"{p} is not a DentSeg folder-models file; delete it to choose again")
        return data["folders"]

    def _write_folders(self, folders: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self._folders_path(), json.dumps({"format": FOLDERS_FORMAT, "folders": folders},
                                                           indent=1, allow_nan=False) + "\n")

    def folder_choice(self, folder: str | os.PathLike) -> FolderChoice | None:
        """The model chosen for ``folder``, or None (the app default applies)."""
        entry = self._read_folders().get(folder_key(folder))
        if not isinstance(entry, dict):
            return None
        return FolderChoice(folder_key(folder), entry.get("model_path"), entry.get("version"),
                            entry.get("sha256"), str(entry.get("chosen", "")))

    def set_folder_version(self, folder: str | os.PathLike, version_id: str) -> FolderChoice:
        """Use a version for ``folder`` (it is verified first)."""
        path = self.verified_model_path(version_id)
        return self._set(folder, str(path), version_id, self.get(version_id).sha256)

    def set_folder_model(self, folder: str | os.PathLike, model_path: str | os.PathLike | None) -> FolderChoice:
        """Use a model file (None: the bundled model) for ``folder``; a version's file counts as that version."""
        if model_path is None:
            return self._set(folder, None, None, None)
        p = Path(model_path).resolve()
        if p.parent.parent == self.dir.resolve():
            return self.set_folder_version(folder, p.parent.name)
        return self._set(folder, str(p), None, None)

    def _set(self, folder, model_path, version, sha) -> FolderChoice:
        folders = self._read_folders() if self._folders_path().is_file() else {}
        choice = FolderChoice(folder_key(folder), model_path, version, sha, _now())
        folders[choice.folder] = {k: v for k, v in choice.as_dict().items() if k != "folder"}
        self._write_folders(folders)
        return choice

    def clear_folder_choice(self, folder: str | os.PathLike) -> None:
        folders = self._read_folders()
        if folders.pop(folder_key(folder), None) is not None:
            self._write_folders(folders)

    def model_for_folder(self, folder: str | os.PathLike) -> tuple[bool, str | None]:
        """(the folder has a choice, its model path - None for the bundled model).

        A chosen version is verified here: a damaged one raises ``ModelVersionError`` rather
        than silently predicting with another model.
        """
        choice = self.folder_choice(folder)
        if choice is None:
            return False, None
        if choice.version:
            return True, str(self.verified_model_path(choice.version))
        return True, choice.model_path


def _folders_by_version(folders: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f, e in sorted(folders.items()):
        if isinstance(e, dict) and e.get("version"):
            out.setdefault(str(e["version"]), []).append(f)
    return out


__all__ = ["FOLDERS_NAME", "FolderChoice", "ModelRegistry", "ModelVersion", "ModelVersionError", "RECORD_NAME",
           "VERSIONS_DIR", "describe_training_cases", "folder_key", "read_version"]
