"""SIGKILL while editing steadily through the real window; the next start recovers the work.

The child (``benchmarks/kill_recovery.py --child``) builds ``MainWindow`` with autosave on,
opens a phantom case and moves the apex one pixel every 150 ms (no pause as long as the
0.75 s debounce) until it is killed with SIGKILL. The next start - the real window here -
offers the autosave and restores every edit older than 2 s (the autosave's maximum wait is
1.5 s; the test allows another 0.5 s for a loaded machine). The undo case: edits are
autosaved, then undone back to the saved file, then the process is killed: the next start
offers nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from dentseg_gui.core.annotation import annotation_path_for, load_annotation
from dentseg_gui.core.phantom import write_phantom_set
from dentseg_gui.gui import messages

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "kill_recovery.py"
LATENCY_S = 0.5   # beyond the 2 s the issue asks for


def _bench():
    spec = importlib.util.spec_from_file_location("kill_recovery", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def case(tmp_path) -> Path:
    return write_phantom_set(tmp_path / "cases", 1, seed=77)[0]


def test_a_killed_session_is_recovered_up_to_the_max_wait(qtbot, case, tmp_path, monkeypatch):
    import os
    kr = _bench()
    user = Path(os.environ["DENTSEG_USER_DATA"])
    r = kr.run_trial(case, user, kill_after_s=5.0, mode="steady")
    assert r["edits"] >= 15 and r["autosaves"] >= 2
    # every edit older than the max-wait (+ latency) at the kill is in what the next start offers
    assert r["offered"] == 1
    x0 = load_annotation(annotation_path_for(case)).landmarks["apex"][0]
    must = sum(1 for t in r["edit_times"] if t <= r["t_kill"] - kr.MAX_WAIT_S - LATENCY_S)
    assert must >= 10 and r["recovered"] >= must, r
    # ... and the next start, through the real window, restores exactly that
    messages.set_interactive(True)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text, *a: asked.append(title) or QMessageBox.StandardButton.Yes)
    from dentseg_gui.gui.main_window import MainWindow
    w = MainWindow(restore_layout=False)
    qtbot.addWidget(w)
    try:
        assert w.offer_recovery()
        qtbot.waitUntil(w.is_idle, timeout=30_000)
        assert asked == ["Recover unsaved work?"]
        doc = w.document
        assert doc.image_path == case.resolve() and doc.is_modified()
        assert doc.annotation.landmarks["apex"][0] == pytest.approx(x0 + r["recovered"])
        doc.undo_stack.undo()                                   # Undo: the saved file again
        assert doc.annotation.landmarks["apex"][0] == pytest.approx(x0) and not doc.is_modified()
    finally:
        w.shutdown()


def test_undone_work_is_not_offered_after_a_kill(case):
    import os
    kr = _bench()
    r = kr.run_trial(case, Path(os.environ["DENTSEG_USER_DATA"]), kill_after_s=0.0, mode="undo")
    assert r["edits"] == 5 and r["autosaves"] >= 1          # the edits had been autosaved
    assert r["offered"] == 0                                 # undone: nothing to recover
