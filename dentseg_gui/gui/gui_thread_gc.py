"""Python's cycle collector runs on the GUI thread while a worker thread runs.

CPython collects reference cycles in whichever thread happens to allocate when a
generation's threshold is crossed. If that is a worker (training imports half of
torch on its first step: thousands of allocations) and the garbage holds Qt
widgets (a closed dialog, the panels of an earlier window), their C++ destructors
run in the worker. PySide6 6.11 can then deadlock: the worker's ``~QObject`` holds
Qt's signal-slot mutex and waits for the GIL, while the GUI thread, deleting
widgets of its own, holds the GIL and waits for that mutex. The window freezes
for good (docs/adr/0005-cycle-collection-on-the-gui-thread.md has the stacks).

So while at least one worker runs, automatic collection is off and a GUI-thread
timer collects with CPython's own policy (the oldest generation whose count
passed its threshold, together with the younger ones). When the last worker has
finished, automatic collection is switched back on, so command-line use and an
idle window behave exactly like plain Python.

Workers call :func:`worker_starting` (``TaskWorker.start`` does); it must run on
the GUI thread.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

log = logging.getLogger("dentseg.gui.gc")

#: how often the GUI thread looks at the collector's counts while a worker runs
INTERVAL_MS = 250


class GuiThreadCollector(QObject):
    """Counts running workers; turns automatic collection off and on around them."""

    def __init__(self, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__()
        self._running = 0
        self._was_enabled = True
        self._timer = QTimer(self)
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self.collect_due)

    @property
    def running_workers(self) -> int:
        return self._running

    def worker_starting(self, worker: QThread) -> None:
        """Call on the GUI thread just before ``worker`` starts; undone when it finishes."""
        if self._running == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()
        self._running += 1
        # QThread.finished is emitted from the worker thread; this object lives on the
        # GUI thread, so the slot runs there (queued), after the worker's last Python line.
        worker.finished.connect(self._worker_finished)

    def _worker_finished(self) -> None:
        worker = self.sender()
        if worker is not None:
            try:
                worker.finished.disconnect(self._worker_finished)
            except (RuntimeError, TypeError):  # already gone
                pass
        self._running = max(0, self._running - 1)
        if self._running == 0:
            self._timer.stop()
            self.collect_due()
            if self._was_enabled:
                gc.enable()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold (as CPython would)."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        generation = -1
        for g in range(3):
            if thresholds[g] and counts[g] > thresholds[g]:
                generation = g
            else:
                break
        if generation < 0:
            return 0
        return gc.collect(generation)


_collector: GuiThreadCollector | None = None


def collector() -> GuiThreadCollector | None:
    """The application's collector (None before the first worker started)."""
    return _collector


def worker_starting(worker: QThread) -> None:
    """Hand cycle collection to the GUI thread for as long as ``worker`` runs.

    A no-op without a Qt application or off the GUI thread (a worker started by
    another worker would be a design error; it is logged, not raised).
    """
    global _collector
    app = QCoreApplication.instance()
    if app is None:
        return
    if QThread.currentThread() is not app.thread():
        log.warning("%s started off the GUI thread; cycle collection left as it is", worker)
        return
    if _collector is None:
        _collector = GuiThreadCollector()
    _collector.worker_starting(worker)
