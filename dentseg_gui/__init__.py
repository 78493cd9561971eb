"""DentSeg: palatal alveolar bone quantification on sagittal CBCT slices.

Layers (import rules are checked by tests/test_architecture.py):

- ``dentseg_gui.core``  - Qt-free, torch-free: images, annotations, geometry,
  measurements, reports, phantoms.
- ``dentseg_gui.model`` - torch + numpy only: LU-Net, training, inference,
  boundary compensation, evaluation.
- ``dentseg_gui.gui``   - the PySide6 / pyqtgraph desktop application.
"""

__version__ = "0.1.0"
