"""Batch prediction as a three-stage pipeline: read -> network -> annotate and write.

``dentseg predict`` of many images pays the start-up (imports, model) once, then

    reader thread   load_image of the next images (at most ``PREFETCH`` ahead)
    calling thread  the network (``Predictor.segment``; ONNX Runtime and torch
                    release the GIL while they compute)
    writer thread   regions, boundary compensation, measurements, quality check
                    (``Predictor.annotate``) and the atomic write of the file

so reading and the Python post-processing of image *i* overlap the network on
image *i + 1*, and the batch is bounded by the network, not by Python.
Results come back in input order; ``on_result`` sees each one as soon as it is
written (the CLI prints it then). One bad file is reported by name and the rest
go on; a bad model (``ModelError``) ends the batch; ``should_stop`` is polled by
every stage, and the files not done are reported as cancelled.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.errors import DentsegError, ModelError

#: images read ahead of the network (each is at most a few tens of MB)
PREFETCH = 2
CANCELLED = "cancelled before this file was predicted"
_DONE = object()


class _Item:
    __slots__ = ("index", "path", "out_path", "image", "seg", "error", "result", "fatal")

    def __init__(self, index: int, path: Path, out_path: Path | None, error: str | None = None) -> None:
        self.index, self.path, self.out_path = index, path, out_path
        self.image: Any = None
        self.seg: Any = None
        self.error = error
        self.result: Any = None
        self.fatal: BaseException | None = None


def run_batch(paths: Sequence[Path], out_paths: Sequence[Path | None], predictor: Any,
              spacing: tuple[float, float] | None, load: Callable[[Path], Any],
              write: Callable[[Any, Path, Path], Any], make_result: Callable[..., Any],
              progress: Callable[[int, int, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              on_result: Callable[[Any], None] | None = None,
              pre_errors: dict[int, str] | None = None) -> list[Any]:
    """Run the pipeline; ``make_result(path, out_path, error, annotation)`` builds each result.

    ``out_paths[i]`` None with ``pre_errors[i]`` set marks an input refused before it is
    read (e.g. two inputs that would write the same file). ``write(annotation, path,
    out_path)`` saves one result. ``progress(i, total, name)`` is called as the network
    reaches input ``i`` and once at the end with ``(total, total, "")``.
    """
    stop = should_stop or (lambda: False)
    total = len(paths)
    pre_errors = dict(pre_errors or {})
    items = [_Item(i, Path(p), out_paths[i], pre_errors.get(i)) for i, p in enumerate(paths)]
    to_net: queue.Queue = queue.Queue(maxsize=PREFETCH)
    to_writer: queue.Queue = queue.Queue(maxsize=PREFETCH)
    abort = threading.Event()       # a fatal error: every stage ends at once
    results: list[Any] = [None] * total
    emit_lock = threading.Lock()
    next_emit = [0]

    def emit(item: _Item) -> None:
        results[item.index] = make_result(item.path, item.out_path if item.error is None else None,
                                          item.error, item.result)
        if on_result is None:
            return
        with emit_lock:             # in input order, as soon as the earlier ones are done
            while next_emit[0] < total and results[next_emit[0]] is not None:
                on_result(results[next_emit[0]])
                next_emit[0] += 1

    def put(q: queue.Queue, obj: Any) -> bool:
        while not abort.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in items:
                if abort.is_set():
                    return
                _stage(item, stop, lambda: setattr(item, "image", load(item.path)))
                if not put(to_net, item):
                    return
        finally:
            put(to_net, _DONE)

    def annotate_and_write(item: _Item) -> None:
        res = predictor.annotate(item.image, item.seg, should_stop=stop)
        write(res.annotation, item.path, item.out_path)
        item.result = res.annotation

    def writer() -> None:
        while True:
            try:
                item = to_writer.get(timeout=0.1)
            except queue.Empty:
                if abort.is_set():
                    return
                continue
            if item is _DONE:
                return
            _stage(item, stop, lambda: annotate_and_write(item))
            item.image = item.seg = None         # free the pixels and probabilities now
            emit(item)

    threads = [threading.Thread(target=reader, name="dentseg-batch-reader", daemon=True),
               threading.Thread(target=writer, name="dentseg-batch-writer", daemon=True)]
    for t in threads:
        t.start()
    fatal: BaseException | None = None
    try:
        while True:
            item = to_net.get()
            if item is _DONE:
                break
            if progress is not None:
                progress(item.index, total, item.path.name)
            _stage(item, stop, lambda: setattr(item, "seg", predictor.segment(item.image, spacing=spacing,
                                                                              should_stop=stop)),
                   fatal=(ModelError,))
            if not put(to_writer, item):
                break
    except BaseException as exc:  # ModelError, KeyboardInterrupt: end every stage, then re-raise
        fatal = exc
        abort.set()
    finally:
        if fatal is None:
            put(to_writer, _DONE)
        else:
            abort.set()
        for t in threads:
            t.join()
    if fatal is not None:
        raise fatal
    for item in items:               # anything a stopped stage never got to
        if results[item.index] is None:
            item.error = item.error or CANCELLED
            emit(item)
    if progress is not None:
        progress(total, total, "")
    return results


def _stage(item: _Item, stop: Callable[[], bool], work: Callable[[], Any],
           fatal: tuple[type[BaseException], ...] = ()) -> None:
    """One stage's ``work`` on an item that has not failed yet: a Stop makes it Cancelled, an error
    becomes the item's error (one odd image must not end a batch), except the ``fatal`` ones."""
    if item.error is not None:
        return
    if stop():
        item.error = CANCELLED
        return
    try:
        work()
    except fatal:
        raise
    except DentsegError as exc:
        item.error = CANCELLED if stop() else str(exc)
    except Exception as exc:  # noqa: BLE001
        item.error = _unexpected(exc)


def _unexpected(exc: BaseException) -> str:
    return f"unexpected error while predicting ({type(exc).__name__}: {exc}); please report it"
