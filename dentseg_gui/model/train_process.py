"""Run ``train.train`` in a separate process, with progress, cancel and errors as messages.

Why a process and not a thread (the GUI's "train on my annotations"): training is
minutes of Python and torch work. In a thread of the GUI process it competes for the
GIL with painting, and anything that goes wrong inside it - a crash in a native
library, running out of memory, a lock taken by Python's cycle collector
(docs/adr/0005) - takes the window, and the user's unsaved cases, down with it. In
its own process it cannot.

``TrainingProcess`` starts a *spawned* interpreter (never forked: forking a process
that runs Qt and OpenMP threads is unsafe) that imports only numpy, torch and this
package's model code, and talks to it through one queue:

    ("progress", dict)       every dict ``train`` reports
    ("done", TrainResult)    the run ended (completed, early stopping or cancelled)
    ("done", None)           cancelled while the cases were still being read: no model
    ("error", (kind, type name, message, traceback text))

Cancel sets a shared event that ``train`` polls before every case it reads and every
step; it then saves the best checkpoint so far and returns, as in-process (or, still
reading, returns with no model). Should the child not stop within ``kill_after_s`` of
the request (stuck in one very large file, say), it is terminated and the run counts as
cancelled (checkpoints are written atomically, so the last saved one stays valid).

No Qt here: the GUI wraps this in a ``TaskWorker`` thread that only waits on the queue.

Like every spawned process, the child imports the parent's main module first: a script
that builds the DentSeg window itself must do so under ``if __name__ == "__main__":``
(``dentseg-gui`` and ``python -m dentseg_gui.gui.app`` do), or the child re-runs that
script instead of training and the run fails with Python's "bootstrapping phase" error.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from ..core.errors import DentsegError

log = logging.getLogger("dentseg.model.train_process")


class TrainingProcessError(DentsegError):
    """The training process failed or ended without a result."""


def _child_main(data_dir: str, out_path: str, config: Any, events, stop) -> None:
    """Entry point of the spawned process (top level, so that spawn can import it)."""
    try:
        from .dataset import LoadingCancelled
        from .train import train

        try:
            result = train(data_dir, out_path, config, progress=lambda d: events.put(("progress", d)),
                           should_stop=stop.is_set)
        except LoadingCancelled:
            result = None           # cancelled before anything was trained
        events.put(("done", result))
    except DentsegError as exc:
        events.put(("error", ("dentseg", type(exc).__name__, str(exc), "")))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        events.put(("error", ("internal", type(exc).__name__, str(exc), traceback.format_exc())))


class TrainingProcess:
    """One training run in a child process. ``run`` blocks the calling (worker) thread."""

    def __init__(self, data_dir: str | Path, out_path: str | Path, config: Any,
                 kill_after_s: float = 20.0) -> None:
        self.data_dir = str(data_dir)
        self.out_path = str(out_path)
        self.config = config
        self.kill_after_s = float(kill_after_s)
        self._ctx = mp.get_context("spawn")
        self._events = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._proc = None
        self.exitcode: int | None = None
        #: True when the child had to be ended after Cancel (``run`` then returns None)
        self.terminated = False

    def run(self, progress: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None, poll_s: float = 0.1) -> Any:
        """Start the child, relay its progress, return its ``TrainResult``.

        After Cancel the child saves its best checkpoint and returns as usual (None when
        it was still reading cases); if it has not within ``kill_after_s``, it is ended
        and ``run`` returns None. Raises ``TrainingProcessError`` (a ``DentsegError``: the
        message is for the user) when the child reports an error or dies without a result.
        """
        report = progress or (lambda d: None)
        stop_asked = should_stop or (lambda: False)
        from .omp_policy import prefer_passive_wait
        prefer_passive_wait()           # inherited by the spawned child, which imports torch afresh
        self._proc = self._ctx.Process(target=_child_main, name="dentseg-train", daemon=True,
                                       args=(self.data_dir, self.out_path, self.config,
                                             self._events, self._stop))
        self._proc.start()
        stop_since: float | None = None
        try:
            while True:
                if stop_asked() and not self._stop.is_set():
                    self._stop.set()
                    stop_since = time.monotonic()
                if stop_since is not None and time.monotonic() - stop_since > self.kill_after_s:
                    # e.g. stuck reading one huge file: the user asked to stop, so it is stopped
                    log.warning("training did not stop within %.0f s of Cancel; ended", self.kill_after_s)
                    self._proc.terminate()
                    self.terminated = True
                    return None
                try:
                    kind, payload = self._events.get(timeout=poll_s)
                except queue.Empty:
                    if not self._proc.is_alive():
                        self._drain(report)
                        self.exitcode = self._proc.exitcode
                        raise TrainingProcessError(
                            f"the training process ended unexpectedly (exit code {self.exitcode}); "
                            "the last saved checkpoint (if any) is kept. Free some memory and try "
                            "again with fewer cases or a smaller batch.") from None
                    continue
                if kind == "progress":
                    report(payload)
                elif kind == "done":
                    return payload
                elif kind == "error":
                    err_kind, name, message, tb = payload
                    if err_kind == "dentseg":
                        raise TrainingProcessError(message)
                    log.error("training process failed:\n%s", tb)   # the traceback goes to the log only
                    raise TrainingProcessError(
                        f"training stopped with an internal error ({name}: {message[:200]}); "
                        "the details are in the log, the last saved checkpoint (if any) is kept")
        finally:
            self._finish()

    def _drain(self, report: Callable[[dict], None]) -> None:
        while True:
            try:
                kind, payload = self._events.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            if kind == "progress":
                report(payload)

    def _finish(self) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5.0)
        self.exitcode = proc.exitcode
        self._events.close()
        self._events.join_thread()
