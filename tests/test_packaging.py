"""The wheel carries the bundled model, card and demo; the package finds them when installed.

Building a wheel takes seconds of CPU; instead this asks setuptools, with the project's own
setup.py + pyproject.toml, which data files ``build_py`` would put into the wheel, and where.
``packaging/check_wheel.sh`` does the full build + fresh-venv install + run.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
NEEDED = {"lunet.pt", "lunet.onnx", "lunet.model-card.json", "demo/demo_case.png", "demo/demo_case.dentseg.json"}


def _distribution(monkeypatch):
    from setuptools.dist import Distribution

    monkeypatch.chdir(REPO)
    spec = importlib.util.spec_from_file_location("dentseg_setup", REPO / "setup.py")
    setup_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_py)          # defines layout(); setup() runs only as a script
    dist = Distribution(setup_py.layout())
    dist.parse_config_files()                  # pyproject.toml: metadata, scripts, dependencies
    return dist


def test_wheel_would_carry_model_card_and_demo_inside_the_package(monkeypatch):
    dist = _distribution(monkeypatch)
    build_py = dist.get_command_obj("build_py")
    build_py.ensure_finalized()
    build_py.manifest_files = {}               # what package_data alone puts in (no MANIFEST run)
    in_wheel = set()
    for pkg in dist.packages:
        for f in build_py.find_data_files(pkg, build_py.get_package_dir(pkg)):
            in_wheel.add(pkg.replace(".", "/") + "/" + Path(f).name)
    bundled = {p.removeprefix("dentseg_gui/bundled/") for p in in_wheel if p.startswith("dentseg_gui/bundled/")}
    assert NEEDED <= bundled, in_wheel
    # every code package is in (a new subpackage must not be left out of the wheel)
    code = {str(p.parent.relative_to(REPO)).replace("/", ".") for p in (REPO / "dentseg_gui").rglob("__init__.py")}
    assert code <= set(dist.packages)


def test_metadata_is_complete(monkeypatch):
    dist = _distribution(monkeypatch)
    import dentseg_gui
    md = dist.metadata
    assert md.version == dentseg_gui.__version__
    assert dist.python_requires == ">=3.11"
    assert getattr(md, "license_expression", None) == "MIT" and (REPO / "LICENSE").is_file()
    assert any("Medical Science Apps" in c for c in md.classifiers)
    assert md.long_description_content_type == "text/markdown" and "DentSeg" in md.long_description
    scripts = set(dist.entry_points["console_scripts"])
    assert scripts == {"dentseg = dentseg_gui.cli:main", "dentseg-gui = dentseg_gui.gui.app:main"}
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("highdicom") for d in deps) and any(d.startswith("torch") for d in deps)


def test_resources_found_in_an_installed_package_before_the_checkout(tmp_path, monkeypatch):
    from dentseg_gui import resources

    monkeypatch.delenv("DENTSEG_RESOURCES", raising=False)
    pkg = tmp_path / "site-packages" / "dentseg_gui"
    (pkg / "bundled" / "demo").mkdir(parents=True)
    (pkg / "bundled" / "lunet.model-card.json").write_text("{}")
    monkeypatch.setattr(resources._ilr, "files", lambda name: pkg)
    assert resources.bundled_model_path() == pkg / "bundled" / "lunet.pt"
    assert resources.demo_image_path() == pkg / "bundled" / "demo" / "demo_case.png"
    monkeypatch.setenv("DENTSEG_RESOURCES", str(tmp_path / "override"))       # the override wins
    assert resources.resources_dir() == tmp_path / "override"
    monkeypatch.delenv("DENTSEG_RESOURCES")
    (pkg / "bundled" / "lunet.model-card.json").unlink()                      # editable: the checkout
    assert resources.resources_dir() == Path(resources.__file__).resolve().parent.parent / "resources"
    assert (resources.resources_dir() / "lunet.pt").is_file()
