"""Which long jobs are running: one place that knows, so the window can show progress and Cancel.

Controllers hand every ``TaskWorker`` they start to ``WorkTracker.track`` under a
slot name (``load``, ``predict``, ``task``, ``volume`` …). The tracker keeps a
Python reference until the thread has finished (a ``QThread`` must not be
collected while it runs), pushes progress as signals (never polled), and answers
"busy?" and "idle?" for the window, the screenshot entry point and the tests.

*Busy* means a job runs now (or the training dock trains). *Idle* means nothing
runs **and** nothing is still on its way to the GUI thread: a worker whose thread
has ended but whose outcome signal has not been handled yet still counts, and so
does anything a controller declares pending (a prediction queued until a case
has loaded).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from .workers import TaskWorker


class WorkTracker(QObject):
    progressChanged = Signal(int, int, str)   # done, total (0 = unknown), text
    progressHidden = Signal()                 # nothing left to show
    busyChanged = Signal(bool)
    workerFinished = Signal()                 # a thread ended (actions may change state)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._workers: set[TaskWorker] = set()
        self._slots: dict[str, TaskWorker] = {}
        self._busy_checks: list[Callable[[], bool]] = []
        self._pending_checks: list[Callable[[], bool]] = []

    # ---------------------------------------------------------------- registration
    def add_busy_check(self, check: Callable[[], bool]) -> None:
        """Something else that makes the window busy (the training dock)."""
        self._busy_checks.append(check)

    def add_pending_check(self, check: Callable[[], bool]) -> None:
        """Something queued that keeps the window from being idle."""
        self._pending_checks.append(check)

    def track(self, worker: TaskWorker, slot: str | None = None) -> TaskWorker:
        """Keep ``worker`` until its thread finished; ``slot`` names it for ``running``/``cancel``.

        ``worker.delivered`` turns True once its outcome signal reached the GUI
        thread, so ``is_idle`` does not report idle between the thread's end and
        the handlers of its result.
        """
        worker.delivered = False

        def delivered():
            worker.delivered = True
            self.hide_progress()

        def done(*_):  # runs before the other handlers of the same signal: mark it afterwards
            QTimer.singleShot(0, delivered)

        for sig in (worker.succeeded, worker.failed, worker.cancelled):
            sig.connect(done)
        self._workers.add(worker)
        if slot is not None:
            self._slots[slot] = worker
        worker.finished.connect(lambda w=worker: self._workers.discard(w))
        worker.finished.connect(self.hide_progress)
        worker.finished.connect(self.workerFinished)
        worker.finished.connect(self.notify_busy)
        return worker

    # ---------------------------------------------------------------- state
    def worker(self, slot: str) -> TaskWorker | None:
        return self._slots.get(slot)

    def running(self, slot: str) -> bool:
        w = self._slots.get(slot)
        return w is not None and w.isRunning()

    def is_busy(self) -> bool:
        return any(w.isRunning() for w in self._slots.values()) or any(c() for c in self._busy_checks)

    def is_idle(self) -> bool:
        """Nothing running, nothing undelivered, nothing pending (training may run in its dock)."""
        return (not any(w.isRunning() or not w.delivered for w in self._slots.values())
                and not any(c() for c in self._pending_checks))

    def notify_busy(self) -> None:
        self.busyChanged.emit(self.is_busy())

    # ---------------------------------------------------------------- progress
    def set_progress(self, done: int, total: int, text: str = "") -> None:
        self.progressChanged.emit(int(done), int(total), str(text))

    def hide_progress(self) -> None:
        if self.is_idle():
            self.progressHidden.emit()

    # ---------------------------------------------------------------- stopping
    def cancel(self, *slots: str) -> None:
        """Ask the running workers of ``slots`` (all slots when none given) to stop."""
        for name, w in self._slots.items():
            if (not slots or name in slots) and w.isRunning():
                w.cancel()

    def shutdown(self, wait_ms: int = 15_000) -> None:
        """Cancel every worker and wait for the threads (window closing, tests tearing down)."""
        for w in list(self._workers):
            if w.isRunning():
                w.cancel()
        for w in list(self._workers):
            w.wait(wait_ms)
