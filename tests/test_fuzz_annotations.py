"""Seeded fuzzing of the annotation reader and everything after it (issue 12, item 5).

A few hundred of the mutations of ``benchmarks/fuzz_annotations.py`` (which runs the full
10,000 in a watched child process): hostile values, geometry, spacing and damaged bytes.
Every file must be refused with a ``DentsegError`` or read, measured, reported and saved
again - no other exception, no inf/NaN written, no file over 5 s of CPU time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_annotations.py"


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_annotations", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_hundreds_of_hostile_annotation_files_never_break_the_pipeline(tmp_path):
    fz = _fuzz()
    counts, failures, slowest, absurd = fz.run_inprocess(250, seed=2026, scale=0.2, workdir=tmp_path)
    assert failures == []
    assert counts["traceback"] == 0 and counts["nonfinite"] == 0
    assert slowest < 5.0
    assert counts["refused"] >= 100 and counts["ok"] >= 20      # the mutations reach both outcomes
