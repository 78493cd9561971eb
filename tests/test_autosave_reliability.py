"""No lost or resurrected work, without the window (issue 12, items 1 and 2).

The autosaver writes steady editing at least every max-wait, removes the autosave when
the document is back at its saved state, and recovery never offers what was undone; a
file changed on disk is noticed on Save (Overwrite / Save as / Reload) and at start-up
(the autosave is offered, never silently deleted); stale temporary files of killed saves
are removed; an unreadable annotation file is an error of its case, not of the app.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dentseg_gui.core.annotation import annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.errors import AnnotationError
from dentseg_gui.core.file_identity import FileIdentity, changed_since, identity_of
from dentseg_gui.core.phantom import write_phantom_set
from dentseg_gui.gui import autosave, cases, messages, save_guard
from dentseg_gui.gui.document import CaseDocument

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def phantom_src(tmp_path_factory) -> list[Path]:
    return write_phantom_set(tmp_path_factory.mktemp("src"), 2, seed=40)


@pytest.fixture
def case(tmp_path, phantom_src) -> Path:
    img = tmp_path / phantom_src[0].name
    img.write_bytes(phantom_src[0].read_bytes())
    annotation_path_for(img).write_bytes(annotation_path_for(phantom_src[0]).read_bytes())
    return img


def open_doc(img: Path) -> CaseDocument:
    loaded = cases.load_case(img)
    return CaseDocument(loaded.image, loaded.annotation, loaded.image_path, loaded.annotation_path,
                        disk_identity=loaded.disk_identity)


def nudge(doc: CaseDocument, dx: float = 1.0) -> None:
    x, y = doc.annotation.landmarks["apex"]
    doc.set_landmark("apex", (x + dx, y))


# --------------------------------------------------------------------------- autosave timing


def test_steady_editing_is_written_within_the_max_wait(qtbot, case):
    """Edits every 50 ms never pause for the 200 ms debounce; the 400 ms max-wait writes anyway."""
    doc = open_doc(case)
    saver = autosave.Autosaver(debounce_ms=200, max_wait_ms=400, interval_ms=60_000)
    saver.attach(doc)
    writes: list[float] = []
    saver.written.connect(lambda _p: writes.append(time.monotonic()))
    t0 = time.monotonic()
    edits = []
    while time.monotonic() - t0 < 2.0:
        nudge(doc)
        edits.append(time.monotonic())
        qtbot.wait(50)
    assert writes, "steady editing was never autosaved"   # (the old debounce-only autosaver: 0 writes)
    # every max-wait (0.4 s) while editing; 1 s of slack for a loaded test machine. The 2 s
    # promise itself is measured by benchmarks/kill_recovery.py
    assert writes[0] - edits[0] < 0.4 + 1.0
    gaps = [b - a for a, b in zip(writes, writes[1:])]
    assert len(writes) >= 2 and max(gaps, default=0.0) < 0.4 + 1.0
    # the autosave holds an edit at most one max-wait (+ slack) old
    rec = autosave.recovery_for(case)
    saved_x = rec.load().landmarks["apex"][0]
    x0 = load_annotation(annotation_path_for(case)).landmarks["apex"][0]
    n_in_autosave = round(saved_x - x0)
    older = sum(1 for t in edits if t <= writes[-1] - 0.0)
    assert n_in_autosave >= older - 1
    saver.stop()


def test_undo_back_to_the_saved_state_removes_the_autosave(qtbot, case):
    doc = open_doc(case)
    saver = autosave.Autosaver(debounce_ms=50, max_wait_ms=100)
    saver.attach(doc)
    nudge(doc)
    nudge(doc)
    assert saver.write_now() == autosave.autosave_path_for(case)
    assert autosave.recovery_for(case) is not None
    doc.undo_stack.undo()
    assert doc.is_modified() and autosave.autosave_path_for(case).exists()
    doc.undo_stack.undo()                                      # back at the saved file
    assert not doc.is_modified()
    assert not autosave.autosave_path_for(case).exists()       # removed at once, no timer
    qtbot.wait(250)                                            # a pending timer must not rewrite it
    assert not autosave.autosave_path_for(case).exists()
    assert autosave.pending_recoveries() == []                 # nothing to offer after a kill
    doc.undo_stack.redo()                                      # edits again: written again
    qtbot.waitUntil(lambda: autosave.autosave_path_for(case).exists(), timeout=2000)
    doc.undo_stack.undo()
    # a normal close of the clean document leaves nothing behind either
    saver.attach(None)
    saver.stop()
    assert not autosave.autosave_path_for(case).exists()


def test_a_pending_edit_is_written_when_the_document_stops_being_watched(qtbot, case):
    doc = open_doc(case)
    saver = autosave.Autosaver(debounce_ms=60_000, max_wait_ms=60_000)
    saver.attach(doc)
    nudge(doc, 3.0)
    assert saver.pending and not autosave.autosave_path_for(case).exists()
    saver.attach(None)
    assert autosave.recovery_for(case).load().landmarks["apex"] == pytest.approx(doc.annotation.landmarks["apex"])


# --------------------------------------------------------------------------- disk changes at start-up


def test_a_file_changed_on_disk_keeps_its_autosave_and_says_so(case):
    doc = open_doc(case)
    nudge(doc, 5.0)
    autosave.write_autosave(doc.annotation, case, doc.disk_identity, doc.annotation_path)
    # unchanged file: offered, no note
    rec = autosave.recovery_for(case)
    assert rec is not None and rec.disk_change is None
    # another program rewrites the annotation file after the crash (even an older mtime)
    other = load_annotation(annotation_path_for(case))
    other.landmarks["CEJ_labial"] = (1.0, 2.0)
    save_annotation(other, annotation_path_for(case))
    os.utime(annotation_path_for(case), (1, 1))
    recs = autosave.pending_recoveries()
    assert [r.image_path for r in recs] == [case.resolve()]
    assert recs[0].disk_change and "changed by another program" in recs[0].disk_change
    assert "Undo shows the file's version" in autosave.recovery_question(recs)
    assert autosave.autosave_path_for(case).exists()
    # recovering = the autosaved work as one step on top of the file as it is now
    now = cases.load_case(case)
    doc2 = CaseDocument(now.image, now.annotation, now.image_path, now.annotation_path)
    assert doc2.restore_annotation(recs[0].load())
    assert doc2.annotation.landmarks["apex"] == pytest.approx(doc.annotation.landmarks["apex"])
    doc2.undo_stack.undo()
    assert doc2.annotation.landmarks["CEJ_labial"] == (1.0, 2.0)


def test_an_autosave_equal_to_the_saved_file_is_removed_unasked(case):
    doc = open_doc(case)
    nudge(doc, 2.0)
    autosave.write_autosave(doc.annotation, case, doc.disk_identity, doc.annotation_path)
    save_annotation(doc.annotation_for_save(), annotation_path_for(case))  # saved, then killed
    assert autosave.pending_recoveries() == []
    assert not autosave.autosave_path_for(case).exists()


# --------------------------------------------------------------------------- disk changes on Save


def test_save_notices_another_programs_change_and_offers_three_ways(case):
    doc = open_doc(case)
    target = annotation_path_for(case)
    assert doc.disk_identity == identity_of(target) and doc.disk_change() is None
    nudge(doc, 4.0)
    asked = []
    ask = lambda name, text: asked.append((name, text)) or "overwrite"  # noqa: E731
    assert save_guard.check_before_save(doc, target, ask=ask) == save_guard.SAVE and asked == []
    # touched but not changed (same bytes, new time): no question
    os.utime(target, (2, 2))
    assert save_guard.check_before_save(doc, target, ask=ask) == save_guard.SAVE and asked == []
    # rewritten by another program
    theirs = load_annotation(target)
    theirs.landmarks["CEJ_palatal"] = (7.0, 8.0)
    save_annotation(theirs, target)
    for answer, expected in (("overwrite", save_guard.SAVE), ("save_as", save_guard.SAVE_AS),
                             ("reload", save_guard.RELOAD), ("cancel", save_guard.CANCEL),
                             (None, save_guard.CANCEL)):
        got = save_guard.check_before_save(doc, target, ask=lambda n, t, a=answer: asked.append((n, t)) or a)
        assert got == expected
    assert asked[0][0] == target.name and "changed by another program" in asked[0][1]
    # Save as to another file is not this file's business
    assert save_guard.check_before_save(doc, target.with_name("x.dentseg.json"), ask=ask) == save_guard.SAVE
    # Reload: the file's version, saved state; Undo gives the unsaved work back
    mine = doc.annotation.landmarks["apex"]
    assert save_guard.reload_from_disk(doc)
    assert doc.annotation.landmarks["CEJ_palatal"] == (7.0, 8.0) and not doc.is_modified()
    assert doc.disk_change() is None
    doc.undo_stack.undo()
    assert doc.annotation.landmarks["apex"] == mine and doc.is_modified()
    # after our own save, the saved file is the one watched
    save_annotation(doc.annotation_for_save(), target)
    doc.mark_saved(target)
    assert doc.disk_change() is None


def test_save_question_and_headless_default(monkeypatch):
    seen = []
    monkeypatch.setattr(messages, "ask_choice",
                        lambda parent, title, text, choices, default=None: seen.append((title, text, choices)) or "reload")
    assert messages.ask_disk_changed(None, "a.dentseg.json", "a.dentseg.json was changed") == "reload"
    title, text, choices = seen[0]
    assert title == "File changed on disk" and [k for k, _ in choices] == ["overwrite", "save_as", "reload", "cancel"]
    monkeypatch.undo()
    messages.set_interactive(False)
    try:
        assert messages.ask_disk_changed(None, "a", "changed") == "cancel"   # never overwrite unseen
    finally:
        messages.set_interactive(True)


def test_deleted_or_created_files_count_as_changes(tmp_path):
    p = tmp_path / "a.dentseg.json"
    missing = identity_of(p)
    assert missing == FileIdentity.missing()
    p.write_text("{}")
    assert "created by another program" in changed_since(missing, p)
    ident = identity_of(p)
    p.unlink()
    assert "deleted or moved" in changed_since(ident, p)
    assert changed_since(None, p) is None


# --------------------------------------------------------------------------- broken files, stale temporary files


def test_an_unreadable_annotation_is_an_error_of_its_case(case):
    annotation_path_for(case).write_text("[" * 100_000 + "]" * 100_000)
    status, detail = cases.disk_status(case)
    assert status == cases.STATUS_ERROR and "nested too deeply" in detail
    with pytest.raises(AnnotationError, match="nested too deeply"):
        cases.load_case(case)
    annotation_path_for(case).write_bytes(b'{"format": "dentseg-annotation", "x": "\\ud800"}')
    with pytest.raises(AnnotationError, match="not valid Unicode"):
        cases.load_case(case)
    assert cases.image_for_annotation(annotation_path_for(case)) is None


def test_stale_temp_files_of_killed_saves_are_removed(case):
    folder = case.parent
    stale = folder / f".{annotation_path_for(case).name}.ab12cd_9.tmp"
    fresh = folder / f".{annotation_path_for(case).name}.zz12cd_9.tmp"
    foreign = folder / ".notes.txt.ab12cd_9.tmp"                     # not one of our targets
    other = folder / "keep.tmp"
    for p in (stale, fresh, foreign, other):
        p.write_bytes(b"half a file")
    old = time.time() - 3600
    for p in (stale, foreign, other):
        os.utime(p, (old, old))
    model = cases.CaseList()
    model.set_paths([case])
    assert not stale.exists()
    assert fresh.exists() and foreign.exists() and other.exists()
    # the app's own folders at start-up
    from dentseg_gui.resources import user_data_dir
    d = user_data_dir() / "autosave"
    d.mkdir(parents=True, exist_ok=True)
    junk = d / ".abc.dentseg.json.k2j4h5g6.tmp"
    junk.write_bytes(b"x")
    os.utime(junk, (old, old))
    assert autosave.remove_stale_temp_files_of_app() == [junk]


@pytest.mark.slow
def test_the_app_starts_with_a_broken_annotation_beside_the_image(case, tmp_path):
    """`dentseg-gui IMAGE` with a hostile .dentseg.json beside it: the window starts (and says why)."""
    annotation_path_for(case).write_text('{"format": "dentseg-annotation", "version": 1, "image": '
                                         '{"path": "x.png", "width": 1e400, "height": 3}}')
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "dentseg_gui.gui.app", str(case), "--screenshot", str(out),
                        "--timeout", "60"], capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.exists() and "Traceback" not in r.stderr
    assert annotation_path_for(case).name in r.stderr and "width" in r.stderr


def test_undo_then_a_normal_close_of_the_window_leaves_no_autosave(qtbot, case):
    from dentseg_gui.gui.main_window import MainWindow
    w = MainWindow(restore_layout=False)
    qtbot.addWidget(w)
    try:
        assert w.open_paths([case])
        qtbot.waitUntil(w.is_idle, timeout=30_000)
        doc = w.document
        nudge(doc, 2.0)
        qtbot.waitUntil(lambda: autosave.autosave_path_for(case).exists(), timeout=3000)  # by the max-wait
        doc.undo_stack.undo()
        assert not autosave.autosave_path_for(case).exists()
        nudge(doc, 1.0)
        doc.undo_stack.undo()                        # undone before the timers fired
        assert w.close()                             # unmodified: no question, closes
        assert not autosave.autosave_path_for(case).exists()
        assert autosave.pending_recoveries() == []
    finally:
        w.shutdown()
