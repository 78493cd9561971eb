"""Long work off the GUI thread: loading big images, prediction, training.

One worker class, :class:`TaskWorker` (a ``QThread``), runs a plain function
``fn(ctx)`` where ``ctx`` (:class:`TaskContext`) lets it report progress, push
data (per-case results, per-epoch training statistics) and ask whether the user
pressed Cancel. Results come back to the GUI thread as queued signals, so the
window never waits on the work, and progress is pushed, never polled.

An exception in the work never reaches the user as a traceback: a
``DentsegError`` becomes its message, anything else a short message plus the
traceback in the log (see ``messages.error_text``).

The network is cached across runs and reloaded only when its file changes
(``get_predictor``), so "predict all" after "predict current" does not pay
the model load twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QThread, Signal

from ..core.errors import DentsegError, ModelError
from . import gui_thread_gc
from .messages import error_text

log = logging.getLogger("dentseg.gui.workers")


class Cancelled(Exception):
    """Raised inside a task to stop it early; the worker then emits ``cancelled``."""


class TaskContext:
    """What the task function sees: progress, data, and the cancel flag."""

    def __init__(self, worker: "TaskWorker"):
        self._worker = worker

    def progress(self, done: int, total: int, text: str = "") -> None:
        self._worker.progress.emit(int(done), int(total), str(text))

    def emit(self, payload: Any) -> None:
        self._worker.data.emit(payload)

    def should_stop(self) -> bool:
        return self._worker._stop.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self.should_stop():
            raise Cancelled()


def _released(ctx: "TaskContext") -> Any:
    raise RuntimeError("this worker has finished; start a new one")


class TaskWorker(QThread):
    """Run ``fn(ctx)`` in a thread; exactly one of succeeded/failed/cancelled is emitted.

    ``error_path`` names the file the work is about, so a failure message says
    which file was wrong.
    """

    progress = Signal(int, int, str)
    data = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    #: drop ``result`` and the inputs once the outcome was delivered (see ``release_data``)
    release_after_delivery = False

    def __init__(self, fn: Callable[[TaskContext], Any], name: str = "task",
                 error_path: str | Path | None = None, parent=None,
                 release_after_delivery: bool | None = None):
        super().__init__(parent)
        self._fn = fn
        self.name = name
        self.error_path = error_path
        self._stop = threading.Event()
        self.outcome: str | None = None  # 'ok' | 'failed' | 'cancelled' once done
        self.result: Any = None
        self.error: str | None = None
        # the worker object outlives its thread (its parent, the window, keeps it): a worker
        # whose result is big and read only by its signal's handlers (an image, a volume) lets
        # go of it once the outcome has been delivered, or every finished load keeps its image
        # alive (issue 14: +80 MB per re-opened radiograph). Queued to this object's (the GUI)
        # thread after ``succeeded`` / ``failed``, so their handlers still get the result.
        if release_after_delivery is not None:
            self.release_after_delivery = bool(release_after_delivery)
        if self.release_after_delivery:
            self.finished.connect(self.release_data)

    def start(self, *args) -> None:
        """Start the thread; while it runs, cycle collection happens on the GUI thread only
        (``gui_thread_gc``: a collection inside the worker can deadlock PySide6)."""
        if not self.isRunning():
            gui_thread_gc.worker_starting(self)
        super().start(*args)

    def cancel(self) -> None:
        self._stop.set()

    def release_data(self) -> None:
        """Drop the result and the work function (and what it holds); ``outcome`` stays."""
        self.result = None
        self._fn = _released

    def is_cancelling(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:  # noqa: D401 - QThread entry point
        ctx = TaskContext(self)
        try:
            result = self._fn(ctx)
        except Cancelled:
            self.outcome = "cancelled"
            self.cancelled.emit()
            return
        except DentsegError as exc:
            self.outcome, self.error = "failed", error_text(exc, self.error_path)
            log.warning("%s failed: %s", self.name, self.error)
            self.failed.emit(self.error)
            return
        except BaseException as exc:  # noqa: BLE001 - the user gets a message, the log the traceback
            log.exception("%s failed", self.name)
            self.outcome, self.error = "failed", error_text(exc, self.error_path)
            self.failed.emit(self.error)
            return
        if self._stop.is_set():
            self.outcome, self.result = "cancelled", result
            self.cancelled.emit()
        else:
            self.outcome, self.result = "ok", result
            self.succeeded.emit(result)


# --------------------------------------------------------------------------- loading


class LoadWorker(TaskWorker):
    """Load an image and its annotation (``cases.load_case``) off the GUI thread."""

    release_after_delivery = True     # the image lives on in the document, not here

    def __init__(self, image_path: str | Path, spacing: tuple[float, float] | None = None, parent=None):
        from .cases import load_case
        path = Path(image_path)
        super().__init__(lambda ctx: load_case(path, spacing), name=f"load {path.name}",
                         error_path=path, parent=parent)
        self.image_path = path


# --------------------------------------------------------------------------- prediction

_predictor_lock = threading.Lock()
_predictor_cache: dict[tuple, Any] = {}


def _model_key(model_path: str | Path | None, compensation: bool) -> tuple:
    from ..resources import bundled_model_path
    p = Path(model_path) if model_path else bundled_model_path()
    try:
        st = p.stat()
    except OSError:
        raise ModelError(f"{p.name}: model file not found ({p}). Choose another model in "
                         "Model > Choose model, or reinstall DentSeg to restore the bundled one.") from None
    from ..model.model_file import card_path_for, onnx_path_for   # torch-free

    def mtime(q: Path) -> int:
        try:
            return q.stat().st_mtime_ns
        except OSError:
            return 0
    # the card and the ONNX export count too: a model exported or re-calibrated later is reloaded
    return (str(p.resolve()), st.st_mtime_ns, st.st_size, mtime(card_path_for(p)), mtime(onnx_path_for(p)),
            bool(compensation))


def cached_predictor():
    """The predictor loaded last (None before the first prediction)."""
    with _predictor_lock:
        return next(iter(_predictor_cache.values()), None)


def get_predictor(model_path: str | Path | None = None, compensation: bool = True):
    """A cached ``model.predict.Predictor``; reloaded when the model file changes."""
    key = _model_key(model_path, compensation)
    with _predictor_lock:
        pred = _predictor_cache.get(key)
        if pred is None:
            try:
                from ..model.predict import Predictor
            except ImportError as exc:
                raise ModelError(f"the prediction module cannot be loaded ({exc}). Check that PyTorch "
                                 "is installed (pip install torch), then restart DentSeg.") from None
            pred = Predictor(model_path=key[0], compensation=compensation)
            _predictor_cache.clear()  # one network in memory at a time
            _predictor_cache[key] = pred
        return pred


@dataclass
class PredictJob:
    """One case to predict. ``image`` may be given (already loaded, with its spacing) or is
    read from the path with ``cases.load_case`` (spacing from the file, its annotation, or
    ``spacing``)."""

    image_path: Path
    image: Any = None                       # SliceImage | None
    spacing: tuple[float, float] | None = None


@dataclass
class PredictOutcome:
    index: int
    job: PredictJob
    image: Any                              # the SliceImage that was predicted
    result: Any                             # model.predict.PredictionResult


class PredictWorker(TaskWorker):
    """Predict one or many cases; ``caseDone`` per case, ``caseFailed`` for a bad file.

    A bad image skips that case (message names it) and the batch goes on; a bad
    model fails the whole run. Cancel stops between cases and inside the network
    (``should_stop`` is passed to ``predict_image``).
    """

    caseDone = Signal(object)        # PredictOutcome
    caseFailed = Signal(int, str)    # index, message
    release_after_delivery = True    # jobs may carry whole images

    def __init__(self, jobs: list[PredictJob], model_path: str | Path | None = None,
                 compensation: bool = True, parent=None):
        self.jobs = list(jobs)
        self.model_path = model_path
        self.compensation = compensation
        super().__init__(self._work, name="predict", error_path=model_path, parent=parent)
        self.n_done = 0
        self.n_failed = 0

    def release_data(self) -> None:
        super().release_data()
        self.jobs = []           # they may carry whole images

    def _work(self, ctx: TaskContext) -> dict:
        total = len(self.jobs)
        ctx.progress(0, total, "loading the model…")
        predictor = get_predictor(self.model_path, self.compensation)
        for i, job in enumerate(self.jobs):
            ctx.check()
            name = Path(job.image_path).name
            ctx.progress(i, total, f"predicting {name} ({i + 1}/{total})")
            try:
                image = job.image
                if image is None:  # read like opening the case: the annotation file may hold the spacing
                    from .cases import load_case
                    image = load_case(job.image_path, job.spacing).image
                result = predictor.predict_image(image, spacing=image.spacing_mm or job.spacing,
                                                 should_stop=ctx.should_stop)
            except ModelError:
                raise
            except DentsegError as exc:
                if ctx.should_stop():  # PredictionCancelled and friends
                    raise Cancelled() from None
                self.n_failed += 1
                self.caseFailed.emit(i, error_text(exc, job.image_path))
                continue
            except Exception as exc:  # noqa: BLE001 - one case must not kill the batch
                if ctx.should_stop():
                    raise Cancelled() from None
                log.exception("prediction failed for %s", job.image_path)
                self.n_failed += 1
                self.caseFailed.emit(i, error_text(exc, job.image_path))
                continue
            ctx.check()
            self.n_done += 1
            self.caseDone.emit(PredictOutcome(i, job, image, result))
        ctx.progress(total, total, "prediction finished")
        return {"done": self.n_done, "failed": self.n_failed}


# --------------------------------------------------------------------------- training


class TrainWorker(TaskWorker):
    """Run ``model.train.train`` in a child process (``model.train_process``); this thread
    only relays: each progress dict arrives on ``data``, the ``TrainResult`` on
    ``succeeded`` (or ``cancelled``). Cancel reaches the child's training loop, which
    checks it every step and keeps the best checkpoint. A crash of the child is a
    message, not the end of the window.
    """

    def __init__(self, data_dir: Path, out_path: Path, config: Any, parent=None):
        self.data_dir = Path(data_dir)
        self.out_path = Path(out_path)
        self.config = config
        super().__init__(self._work, name="train", error_path=None, parent=parent)

    def _work(self, ctx: TaskContext) -> Any:
        try:
            from ..model.train_process import TrainingProcess
        except ImportError as exc:
            raise ModelError(f"the training module cannot be loaded ({exc}). Check that PyTorch "
                             "is installed, then restart DentSeg.") from None
        return TrainingProcess(self.data_dir, self.out_path, self.config).run(
            progress=ctx.emit, should_stop=ctx.should_stop)
