"""The one part of the build that pyproject.toml cannot say: where the bundled files go.

The repository keeps the LU-Net weights, the model card and the demo case in the
top-level ``resources/`` folder; the wheel carries them inside the package as
``dentseg_gui/bundled`` (package data of a data-only package mapped onto
``resources/``), where ``dentseg_gui/resources.py`` finds them with
``importlib.resources``. Everything else (metadata, entry points) is in
pyproject.toml. ``layout()`` is also read by tests/test_packaging.py to check
what the build would include without building.
"""

from setuptools import find_packages, setup

BUNDLED = "dentseg_gui.bundled"


def layout() -> dict:
    code = find_packages(include=["dentseg_gui", "dentseg_gui.*"])
    return {
        "packages": code + [BUNDLED, BUNDLED + ".demo"],
        "package_dir": {BUNDLED: "resources"},
        "package_data": {BUNDLED: ["*.pt", "*.onnx", "*.json"], BUNDLED + ".demo": ["*"]},
    }


if __name__ == "__main__":
    setup(**layout())
