"""README's set-up commands stay true: CI runs the README's test command verbatim."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_two_setup_commands_and_ci_runs_the_test_one():
    blocks = _bash_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    run_app, run_tests = blocks[0], blocks[1]
    assert "dentseg-gui --demo" in run_app and "pip install" in run_app
    assert "pytest" in run_tests
    assert run_tests in (REPO / ".ci" / "run").read_text(encoding="utf-8")
