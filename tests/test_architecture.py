"""Layer rules: the core imports neither Qt nor torch; the model package imports no Qt.

Checked two ways: statically (every import statement in the source) and at run
time (importing the core and running ``dentseg measure --help`` loads no torch/Qt).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


PKG = Path(__file__).resolve().parent.parent / "dentseg_gui"
QT = ("PySide6", "pyqtgraph", "shiboken6")
TORCH = ("torch",)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(folder: str, banned: tuple[str, ...]) -> list[str]:
    bad = []
    for f in sorted((PKG / folder).rglob("*.py")):
        for name in _imports(f):
            if name.split(".")[0] in banned:
                bad.append(f"{f.relative_to(PKG)} imports {name}")
    return bad


def test_core_is_qt_free_and_torch_free():
    assert _violations("core", QT + TORCH) == []


def test_model_is_qt_free():
    assert _violations("model", QT) == []


def test_core_and_measure_command_load_neither_torch_nor_qt():
    code = ("import sys; import dentseg_gui.core.measurements, dentseg_gui.core.report, "
            "dentseg_gui.core.annotation, dentseg_gui.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'pyqtgraph')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=PKG.parent, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
