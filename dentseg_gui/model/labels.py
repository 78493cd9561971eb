"""The classes and landmarks every DentSeg network outputs, in channel order (no torch)."""

CLASSES = ("background", "PAB", "enamel")
LANDMARK_NAMES = ("CEJ_labial", "CEJ_palatal", "apex")
