"""DentSeg: palatal alveolar bone quantification on sagittal CBCT slices.

Layers (import rules are checked by tests/test_architecture.py):

- ``dentseg_gui.core``  - Qt-free, torch-free: images, annotations, geometry,
  measurements, reports, phantoms.
- ``dentseg_gui.model`` - torch + numpy only: LU-Net, training, inference,
  boundary compensation, evaluation.
- ``dentseg_gui.gui``   - the PySide6 / pyqtgraph desktop application.
"""

import os as _os

__version__ = "0.1.0"

# OpenMP threads (torch) wait passively instead of spinning: on a shared CPU, spinning
# threads starve everything else. OpenMP reads this once, when torch is imported, so it
# is set here, before any of our modules can import torch; a value the user set wins
# (docs/adr/0011, model/threads.py).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
