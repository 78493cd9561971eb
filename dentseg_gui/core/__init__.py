"""Qt-free and torch-free core: images, annotations, geometry, measurements, reports."""
