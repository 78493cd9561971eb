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


# --------------------------------------------------------------------------- size and cycles

MAX_MODULE_LINES = 900
MAX_MAIN_WINDOW_LINES = 600


def test_no_module_grows_past_its_limit():
    sizes = {str(f.relative_to(PKG)): len(f.read_text(encoding="utf-8").splitlines())
             for f in PKG.rglob("*.py")}
    too_big = {f: n for f, n in sizes.items() if n > MAX_MODULE_LINES}
    assert too_big == {}
    assert sizes["gui/main_window.py"] <= MAX_MAIN_WINDOW_LINES


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> list[ast.ImportFrom | ast.Import]:
    """Every import statement except those under ``if TYPE_CHECKING:`` (they never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(f): f for f in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, f in files.items():
        deps: set[str] = set()
        for node in _runtime_imports(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files)
                continue
            if node.level:
                base = mod.split(".") if f.name == "__init__.py" else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)] + ([node.module] if node.module else [])
                base_name = ".".join(base)
            else:
                base_name = node.module or ""
            for a in node.names:
                full = f"{base_name}.{a.name}"
                deps.add(full if full in files else base_name)
        graph[mod] = {d for d in deps if d in files and d != mod}
    return graph


def test_no_import_cycle_between_modules():
    graph = _import_graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [])
    assert cycles == []
