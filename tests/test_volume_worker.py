"""The volume pieces run in the GUI's worker thread: load with progress and Cancel, reslice, while the
GUI thread keeps running (what the lead's volume view will call)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dentseg_gui.core.reslice import reslice, reslice_preview
from dentseg_gui.core.volume import plane_for_tooth
from dentseg_gui.core.volume_io import VolumeCancelled, load_volume, write_dicom_series
from dentseg_gui.gui.workers import Cancelled, TaskWorker
from volume_samples import tooth_volume


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    vol, axis = tooth_volume()
    return write_dicom_series(vol, tmp_path_factory.mktemp("w") / "scan")[0].parent, vol, axis


def _load_task(folder, gate: threading.Event | None = None):
    def task(ctx):
        def progress(done, total, text):
            ctx.progress(done, total, text)
            if gate is not None:
                gate.wait(5)                 # the test presses Cancel while the load is under way
        try:
            vol = load_volume(folder, progress, ctx.should_stop)
        except VolumeCancelled:              # the loader's Cancel -> the worker's "cancelled"
            raise Cancelled() from None
        return vol
    return task


def test_volume_loads_and_reslices_in_a_worker_with_progress(qtbot, series):
    folder, vol, axis = series
    w = TaskWorker(_load_task(folder), name="open volume", error_path=folder)
    seen = []
    w.progress.connect(lambda d, t, s: seen.append((d, t)))
    with qtbot.waitSignal(w.succeeded, timeout=20_000) as blocker:
        w.start()
    w.wait()
    got = blocker.args[0]
    assert np.array_equal(got.voxels, vol.voxels) and seen and seen[-1][0] == seen[-1][1]
    plane = plane_for_tooth(axis, 0.3)

    def slice_task(ctx):
        return reslice(got, plane), reslice_preview(got, plane)[0]

    w = TaskWorker(slice_task, name="reslice")
    with qtbot.waitSignal(w.succeeded, timeout=20_000) as blocker:
        w.start()
    w.wait()
    full, preview = blocker.args[0]
    assert full.shape == plane.shape and preview.shape == ((plane.shape[0] + 1) // 2, (plane.shape[1] + 1) // 2)


def test_cancel_while_loading_ends_as_cancelled(qtbot, series):
    folder = series[0]
    gate = threading.Event()
    w = TaskWorker(_load_task(folder, gate), name="open volume")
    with qtbot.waitSignal(w.cancelled, timeout=20_000):
        w.start()
        w.cancel()
        gate.set()
    w.wait()
    assert w.outcome == "cancelled"
