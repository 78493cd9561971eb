"""Shared test set-up: headless Qt, paths to the real data, small phantom sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _isolated_user_data(tmp_path_factory, monkeypatch):
    """Keep every test away from the real user's data folder and settings."""
    d = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("DENTSEG_USER_DATA", str(d))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(d / "config"))
