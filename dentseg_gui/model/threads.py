"""How many CPU threads DentSeg's network uses, and how they wait (docs/adr/0011).

Measured on the 2-core target machine (docs/benchmarks.md, "Threads"): threads
that *spin* while they wait for work steal the CPU from every other process and
from each other as soon as something else runs, so

* torch's OpenMP threads wait passively: ``OMP_WAIT_POLICY=PASSIVE`` is set when
  ``dentseg_gui`` is imported (OpenMP reads it once, when torch loads it, so it
  has to be in the environment before ``import torch``); a value the user set wins;
* ONNX Runtime's intra-op threads do not spin either (session option
  ``session.intra_op.allow_spinning = 0``, set in ``engine.py``);
* inference uses **half** the cores this process may run on (at least 1, at most
  ``MAX_INFERENCE_THREADS``): on an idle 2-core machine one ONNX Runtime thread segments a
  384x384 slice as fast as two (88 vs 89 ms), and beside one CPU-bound process it stays
  there (93 ms) while two threads, one of which must wait for the busy core at every
  parallel step, take 520-530 ms (docs/adr/0011, "Re-measured idle"). The other core
  serves the batch pipeline's reading and writing;
* training uses the cores this process may run on, at most ``MAX_TRAINING_THREADS``;
* ``--threads N`` / ``DENTSEG_THREADS`` override both.

Torch-free, so the CLI can decide before anything heavy is imported.
"""

from __future__ import annotations

import os

#: environment variable that overrides the thread count (like ``--threads``)
THREADS_ENV = "DENTSEG_THREADS"
MAX_INFERENCE_THREADS = 4
MAX_TRAINING_THREADS = 4
MAX_THREADS = 64
#: "1" lets ONNX Runtime's threads spin while they wait - for measuring the choice only
ORT_SPINNING_ENV = "DENTSEG_ORT_SPINNING"


def set_wait_policy() -> None:
    """Passive waiting for OpenMP threads unless the user chose otherwise (before ``import torch``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _requested(requested: int | None) -> int | None:
    if requested is not None:
        return int(requested)
    env = os.environ.get(THREADS_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return None


def inference_threads(requested: int | None = None) -> int:
    """Threads for the network at inference: ``requested`` (``--threads``), else the env var,
    else half the available cores (at least 1) up to ``MAX_INFERENCE_THREADS``."""
    n = _requested(requested)
    if n is None:
        n = min(max(1, available_cores() // 2), MAX_INFERENCE_THREADS)
    return max(1, min(MAX_THREADS, n))


def training_threads(requested: int | None = None) -> int:
    """Threads for training: as for inference, capped at ``MAX_TRAINING_THREADS`` by default."""
    n = _requested(requested)
    if n is None:
        n = min(available_cores(), MAX_TRAINING_THREADS)
    return max(1, min(MAX_THREADS, n))


def ort_spinning() -> bool:
    """Whether ONNX Runtime's threads may spin (default no; ``DENTSEG_ORT_SPINNING=1`` for benchmarks)."""
    return os.environ.get(ORT_SPINNING_ENV, "").strip() == "1"
