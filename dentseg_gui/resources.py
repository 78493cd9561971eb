"""Where the bundled files live: the LU-Net weights, its model card, the demo case.

They are in the repository's top-level ``resources/`` folder (the package is
installed in editable mode, see README). ``DENTSEG_RESOURCES`` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("DENTSEG_RESOURCES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "resources"


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
