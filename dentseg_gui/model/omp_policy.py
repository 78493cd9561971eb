"""Let torch's OpenMP threads sleep, not spin, while they wait: training on a shared CPU.

By default the OpenMP runtime behind torch's CPU kernels keeps a waiting thread spinning
for a while. On a machine whose cores are busy with other work (a clinic PC, or the
project's 2-core machine shared by several processes) that spinning steals the very
cores the other thread needs: one training step of LU-Net (batch 8, 160 px) measured
14.4 s wall and 3.5 s CPU with 2 threads and the default policy, 2.6 s wall and 0.7 s CPU
with ``OMP_WAIT_POLICY=PASSIVE`` (same load, same machine; 1 thread: 4.1 s / 0.7 s).

The variable is read when the OpenMP runtime starts, i.e. when torch is first imported,
so ``prefer_passive_wait`` must run before that: ``dentseg train`` calls it first thing,
and the GUI's training process gets it in its environment. A value the user set wins.
No torch import here.
"""

from __future__ import annotations

import os
import sys


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless set; True when it can still take effect (torch not loaded)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" not in sys.modules
