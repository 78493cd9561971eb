"""PySide6 / pyqtgraph desktop application (the thin Qt layer)."""
