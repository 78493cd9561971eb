"""Errors and questions shown to the user, in one place.

Every file or model error the GUI meets goes through :func:`show_error`,
which names the file and says what to do; an unexpected exception anywhere
(including a worker thread) reaches :func:`install_excepthook`, which logs the
traceback to a file and shows a short message instead of crashing or freezing.

All dialogs are made with the static ``QMessageBox`` functions (``critical``,
``warning``, ``information``, ``question``) or :func:`ask_choice`, so tests can
monkeypatch them and a headless run (``--screenshot``) can switch them off
with :func:`set_interactive`.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ..core.errors import AnnotationError, DentsegError, ImageLoadError, ModelError

log = logging.getLogger("dentseg.gui")

_interactive = True


def set_interactive(on: bool) -> None:
    """Off: dialogs are not shown, errors go to the log and stderr (headless runs)."""
    global _interactive
    _interactive = bool(on)


def is_interactive() -> bool:
    return _interactive


# --------------------------------------------------------------------------- texts


def error_text(exc: BaseException, path: str | Path | None = None) -> str:
    """A message for a person: what went wrong with which file, and what to do.

    ``DentsegError`` messages already say both; other exceptions get a short
    generic sentence (the traceback goes to the log, never to the screen).
    """
    name = Path(path).name if path else None
    prefix = f"{name}: " if name else ""
    msg = str(exc).strip()
    if isinstance(exc, DentsegError):
        if name and name in msg:
            return msg
        return prefix + msg
    if isinstance(exc, FileNotFoundError):
        return f"{prefix}file not found. Check that it was not moved or deleted, then open it again."
    if isinstance(exc, PermissionError):
        return (f"{prefix}permission denied. Choose a folder you can write to, "
                "or ask your administrator for access.")
    if isinstance(exc, OSError):
        return f"{prefix}{exc.strerror or msg}. Check the disk and the path, then try again."
    if isinstance(exc, MemoryError):
        return (f"{prefix}not enough memory. Close other cases or programs, "
                "or use a smaller image.")
    return (f"{prefix}an unexpected internal error occurred ({type(exc).__name__}: {msg[:200]}). "
            f"Details were written to {log_path()}. Please report it.")


def error_title(exc: BaseException) -> str:
    if isinstance(exc, ImageLoadError):
        return "Cannot open image"
    if isinstance(exc, AnnotationError):
        return "Cannot read annotation"
    if isinstance(exc, ModelError):
        return "Model problem"
    if isinstance(exc, OSError):
        return "File problem"
    return "DentSeg error"


# --------------------------------------------------------------------------- dialogs


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    log.error("%s: %s", title, text)
    if not _interactive:
        print(f"dentseg-gui: {title}: {text}", file=sys.stderr)
        return
    QMessageBox.critical(parent, title, text)


def show_exception(parent: QWidget | None, exc: BaseException, path: str | Path | None = None,
                   title: str | None = None) -> None:
    if not isinstance(exc, DentsegError):
        log.error("error with %s", path, exc_info=(type(exc), exc, exc.__traceback__))
    show_error(parent, title or error_title(exc), error_text(exc, path))


def show_warning(parent: QWidget | None, title: str, text: str) -> None:
    log.warning("%s: %s", title, text)
    if not _interactive:
        print(f"dentseg-gui: {title}: {text}", file=sys.stderr)
        return
    QMessageBox.warning(parent, title, text)


def show_info(parent: QWidget | None, title: str, text: str) -> None:
    log.info("%s: %s", title, text)
    if _interactive:
        QMessageBox.information(parent, title, text)


def ask_yes_no(parent: QWidget | None, title: str, text: str, default: bool = True) -> bool:
    """Yes/No question; headless runs take ``default``."""
    if not _interactive:
        return default
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    answer = QMessageBox.question(parent, title, text, yes | no, yes if default else no)
    return answer == yes


def ask_save_changes(parent: QWidget | None, case_name: str) -> str:
    """'save', 'discard' or 'cancel' for a case with unsaved changes."""
    if not _interactive:
        return "cancel"
    B = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent, "Unsaved changes",
        f"{case_name} has unsaved changes.\n\nSave them before continuing?",
        B.Save | B.Discard | B.Cancel, B.Save)
    return {B.Save: "save", B.Discard: "discard"}.get(answer, "cancel")


def ask_disk_changed(parent: QWidget | None, file_name: str, change: str) -> str:
    """The annotation file changed on disk since it was opened: 'overwrite', 'save_as',
    'reload' or 'cancel' (headless runs: 'cancel', so nothing is overwritten unseen)."""
    answer = ask_choice(
        parent, "File changed on disk",
        f"{change}.\n\nOverwrite replaces that version with yours. Save as keeps both. "
        f"Reload shows the version on disk; your unsaved changes stay one Undo away.",
        [("overwrite", "Overwrite"), ("save_as", "Save as…"), ("reload", "Reload"),
         ("cancel", "Cancel")], default="cancel")
    return answer if answer in ("overwrite", "save_as", "reload") else "cancel"


def ask_choice(parent: QWidget | None, title: str, text: str,
               choices: Sequence[tuple[str, str]], default: str | None = None) -> str | None:
    """A question with named buttons: ``choices`` = [(key, button label), ...].

    Returns the chosen key, or None when the dialog was cancelled (Esc / closed).
    A choice whose key is 'cancel' gets the reject role.
    """
    if not _interactive:
        return default
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    buttons = {}
    for key, label in choices:
        role = (QMessageBox.ButtonRole.RejectRole if key == "cancel"
                else QMessageBox.ButtonRole.AcceptRole)
        buttons[box.addButton(label, role)] = key
        if key == default:
            box.setDefaultButton(list(buttons)[-1])
    box.exec()
    return buttons.get(box.clickedButton())


# --------------------------------------------------------------------------- excepthook


def log_path() -> Path:
    from ..resources import user_data_dir
    return user_data_dir() / "logs" / "dentseg-gui.log"


def setup_logging() -> Path:
    """Log to user_data_dir()/logs/dentseg-gui.log (created on demand)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        root = logging.getLogger("dentseg")
        if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path
                   for h in root.handlers):
            h = logging.FileHandler(path, encoding="utf-8")
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(h)
        root.setLevel(logging.INFO)
    except OSError:
        pass  # logging is a help, never a reason to refuse to start
    return path


class _Relay(QObject):
    """Carries an exception report from any thread to the GUI thread."""

    report = Signal(str, str)


_relay: _Relay | None = None
_previous_hooks: tuple | None = None


def install_excepthook(parent_getter: Callable[[], QWidget | None] = lambda: None) -> None:
    """Route uncaught exceptions (GUI thread and worker threads) to a message box + log.

    The message names the error and where the details are; the app keeps running.
    """
    global _relay, _previous_hooks
    setup_logging()
    if _previous_hooks is None:
        _previous_hooks = (sys.excepthook, threading.excepthook)
    _relay = _Relay()
    shown = {"busy": False}

    def on_report(title: str, text: str) -> None:
        if shown["busy"]:  # one box at a time: a failing paint event must not stack boxes
            return
        shown["busy"] = True
        try:
            show_error(parent_getter(), title, text)
        finally:
            shown["busy"] = False

    _relay.report.connect(on_report, Qt.ConnectionType.QueuedConnection)

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            app = QApplication.instance()
            if app is not None:
                QTimer.singleShot(0, app.quit)
            return
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        print(f"dentseg-gui: error: {error_text(exc)}", file=sys.stderr)
        if _relay is not None:
            _relay.report.emit(error_title(exc), error_text(exc))

    def thread_hook(args) -> None:
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def uninstall_excepthook() -> None:
    global _previous_hooks, _relay
    if _previous_hooks is not None:
        sys.excepthook, threading.excepthook = _previous_hooks
        _previous_hooks = None
    _relay = None
