"""Where the bundled files live: the LU-Net weights, its model card, the demo case.

The repository keeps them in its top-level ``resources/`` folder. The build
(``setup.py``) ships that folder inside the package as ``dentseg_gui/bundled``,
so an installed wheel and a PyInstaller app find them with
``importlib.resources``. Lookup order:

1. ``DENTSEG_RESOURCES`` (a folder) when set: an override for tests and sites;
2. ``dentseg_gui/bundled`` inside the installed package (wheel, frozen app);
3. the checkout's ``resources/`` beside the package (editable install, PYTHONPATH).
"""

from __future__ import annotations

import os
from importlib import resources as _ilr
from pathlib import Path

#: the package folder ``resources/`` is mapped to in a wheel (see setup.py)
BUNDLED_PACKAGE = "dentseg_gui.bundled"
_MARKER = "lunet.model-card.json"


def resources_dir() -> Path:
    env = os.environ.get("DENTSEG_RESOURCES")
    if env:
        return Path(env)
    installed = _installed_dir()
    if installed is not None:
        return installed
    return Path(__file__).resolve().parent.parent / "resources"


def _installed_dir() -> Path | None:
    """``dentseg_gui/bundled`` of an installed wheel or a frozen app, if it is there."""
    try:
        d = _ilr.files(__package__ or "dentseg_gui").joinpath("bundled")
    except (ModuleNotFoundError, TypeError):
        return None
    # a wheel or a one-folder app unpacks to real files: torch.load and the GUI need paths
    if isinstance(d, Path) and (d / _MARKER).is_file():
        return d
    return None


def bundled_model_path() -> Path:
    return resources_dir() / "lunet.pt"


def bundled_model_card_path() -> Path:
    return resources_dir() / "lunet.model-card.json"


def demo_image_path() -> Path:
    return resources_dir() / "demo" / "demo_case.png"


def user_data_dir() -> Path:
    """Per-user folder for trained models, autosaves and settings."""
    env = os.environ.get("DENTSEG_USER_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or (Path.home() / ".local" / "share")
    return Path(base) / "dentseg"
