"""Typed errors with messages meant for a person.

Every error the user can cause (a bad file, a missing landmark, a wrong model
file) is one of these. Its message says what is wrong and what to do; the
command line and the GUI show the message, never a traceback.
"""

from __future__ import annotations


class DentsegError(Exception):
    """Base class of every error DentSeg reports to the user."""


class ImageLoadError(DentsegError):
    """An image file could not be read (missing, truncated, unsupported, too large)."""


class AnnotationError(DentsegError):
    """An annotation file (``*.dentseg.json``) is missing, malformed or invalid."""


class ModelError(DentsegError):
    """A model file is missing, corrupt, of the wrong architecture, or fails its hash check."""


class MeasurementError(DentsegError):
    """A measurement input is unusable as a whole (not a per-key missing value)."""
