"""Synthetic CBCT data of upper incisors with exact ground truth.

Why: DentSeg has no labelled real scans it may ship, yet LU-Net needs training
data and every measurement, the boundary compensation and the evaluation need
cases whose truth is known exactly.

* ``params``: one random draw of a case (anatomy and imaging), per style;
* ``anatomy``: the incisor, its bone, palate and soft tissue as polygons in mm;
* ``placement`` and ``render``: from millimetres to a rendered, noisy image;
* ``slice``: the 2-D sagittal slice with its annotation (``dentseg phantom``).

Qt-free and torch-free: numpy, cv2 and shapely only. Reproducible: the same
seed and style give identical pixels and JSON.
"""

from .params import STYLES, PhantomStyleError
from .slice import GENERATOR, GENERATOR_VERSION, PhantomCase, generate_phantom, write_phantom_set

__all__ = ["GENERATOR", "GENERATOR_VERSION", "STYLES", "PhantomCase", "PhantomStyleError",
           "generate_phantom", "write_phantom_set"]
