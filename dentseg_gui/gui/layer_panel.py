"""The layer panel: which class is edited, each class's visibility and opacity, and
which overlays (landmarks, labels, axes, thickness lines, crest, palatal curve) are drawn.

It only talks to the canvas (``set_region_style``, ``set_active_region``,
``set_overlay_visible``); the window docks it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QGridLayout, QLabel, QRadioButton, QSlider,
                               QVBoxLayout, QWidget)

from . import style

OVERLAY_LABELS = {"landmarks": "Landmarks", "labels": "Labels", "axes": "CEJ–apex axes",
                  "thickness": "Thickness lines", "crest": "Crest level",
                  "palatal_curve": "Palatal curve"}


class LayerPanel(QWidget):
    """Class visibility / opacity, the active class, and which overlays are drawn."""

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        self.active_group = QButtonGroup(self)
        self.visible: dict[str, QCheckBox] = {}
        self.opacity: dict[str, QSlider] = {}
        self.active: dict[str, QRadioButton] = {}
        grid.addWidget(QLabel("<small>edit</small>"), 0, 0)
        grid.addWidget(QLabel("<small>class</small>"), 0, 1)
        grid.addWidget(QLabel("<small>opacity</small>"), 0, 2)
        for r, (name, rs) in enumerate(style.REGION_STYLES.items(), start=1):
            radio = QRadioButton(self)
            radio.setToolTip(f"Draw, paint and erase in {name}")
            self.active_group.addButton(radio)
            self.active[name] = radio
            box = QCheckBox(name, self)
            box.setChecked(rs.visible)
            box.setToolTip(f"Show {rs.label or name}")
            box.setStyleSheet(f"QCheckBox {{ color: {rs.color}; font-weight: bold; }}")
            slider = QSlider(Qt.Orientation.Horizontal, self)
            slider.setRange(0, 100)
            slider.setValue(int(rs.opacity * 100))
            slider.setToolTip(f"Fill opacity of {name}")
            box.toggled.connect(lambda on, n=name: self.canvas.set_region_style(n, visible=on))
            slider.valueChanged.connect(lambda v, n=name: self.canvas.set_region_style(n, opacity=v / 100))
            radio.toggled.connect(lambda on, n=name: on and self.canvas.set_active_region(n))
            grid.addWidget(radio, r, 0)
            grid.addWidget(box, r, 1)
            grid.addWidget(slider, r, 2)
            self.visible[name] = box
            self.opacity[name] = slider
        self.active["PAB"].setChecked(True)
        lay.addLayout(grid)
        self.overlays: dict[str, QCheckBox] = {}
        ov = QGridLayout()
        for i, name in enumerate(style.OVERLAY_NAMES):
            box = QCheckBox(OVERLAY_LABELS.get(name, name), self)
            box.setChecked(True)
            box.toggled.connect(lambda on, n=name: self.canvas.set_overlay_visible(n, on))
            ov.addWidget(box, i // 2, i % 2)
            self.overlays[name] = box
        lay.addLayout(ov)
        lay.addStretch(1)
