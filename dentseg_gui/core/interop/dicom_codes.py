"""Codes of the DICOM SEG + SR export: standard where a concept has one, DentSeg's own else.

Standard codes (SNOMED CT "SCT", DICOM "DCM", units "UCUM") are taken from pydicom's
code dictionary, i.e. from DICOM PS3.16, never typed in by hand. Concepts that only
DentSeg defines (a PAB thickness at a level of the root, the crest-to-CEJ distance,
the PAB centroid in the tooth frame, the enamel cap as a segment) use the private
coding scheme ``99DENTSEG`` (PS3.3 8.2: private schemes start with "99"), with code
values of at most 16 characters (DICOM's SH). ``SR_ITEMS`` maps every measurement key
to its item; docs/interop.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from ..measurements import MEASUREMENT_KEYS, THICKNESS_DEPTHS_MM, THICKNESS_LEVELS

SCHEME = "99DENTSEG"
SCHEME_NAME = "DentSeg local codes"


def local(value: str, meaning: str) -> Code:
    return Code(value, SCHEME, meaning)


# structures
PAB = local("PAB", "Palatal alveolar bone of maxillary incisor")
ENAMEL = local("ENAMEL", "Enamel cap of maxillary incisor")
ROOT = local("ROOT", "Root of maxillary incisor")
CROWN = local("CROWN", "Crown of maxillary incisor")
INCISOR = codes.SCT.StructureOfMaxillaryIncisorTooth      # SCT 442100006
MAXILLA = codes.SCT.Maxilla                                 # SCT 70925003
BONE = codes.SCT.Bone                                       # SCT 272673000
ANATOMICAL_STRUCTURE = codes.SCT.AnatomicalStructure        # SCT 91723000
AI_FAMILY = codes.DCM.ArtificialIntelligence                # DCM 123110

# why a measurement has no value (CID 42 Numeric Value Qualifier)
NOT_ATTEMPTED = codes.DCM.MeasurementNotAttempted           # DCM 114007

UNITS = {"mm": codes.UCUM.Millimeter, "mm²": codes.UCUM.SquareMillimeter, "°": codes.UCUM.Degree}


@dataclass(frozen=True)
class SrItem:
    """Where a measurement key goes in the SR: its group, concept name and finding site."""

    key: str
    group: str                 # 'PAB', 'enamel' or 'incisor'
    concept: Code              # concept name of the NUM item
    finding_site: Code | None = None
    own: Code | None = None    # local code naming exactly this key (set by _items)

    @property
    def key_code(self) -> Code:
        """The code that names this key alone: the concept when it is local, else ``own``.
        Used where the concept is shared (two 'Length' items), e.g. for a missing value."""
        return self.concept if self.concept.scheme_designator == SCHEME else self.own


def _items() -> dict[str, SrItem]:
    out = {
        "pab_area_mm2": SrItem("pab_area_mm2", "PAB", codes.SCT.Area),            # SCT 42798000
        "enamel_area_mm2": SrItem("enamel_area_mm2", "enamel", codes.SCT.Area),
        "pab_height_mm": SrItem("pab_height_mm", "PAB", codes.DCM.Height),         # DCM 121207
        "root_length_mm": SrItem("root_length_mm", "incisor", codes.SCT.Length, ROOT),  # SCT 410668003
        "crown_length_mm": SrItem("crown_length_mm", "incisor", codes.SCT.Length, CROWN),
        "axis_tilt_deg": SrItem("axis_tilt_deg", "incisor", codes.SCT.Angle),      # SCT 1483009
    }
    own = {f"pab_thickness_{t}_mm": (f"PAB-THK-{t}PCT", f"PAB thickness at {t} % of root length")
           for t in THICKNESS_LEVELS}
    own.update({f"pab_thickness_{d}mm_mm": (f"PAB-THK-{d}MM", f"PAB thickness {d} mm apical of CEJ level")
                for d in THICKNESS_DEPTHS_MM})
    own.update({"pab_crest_cej_mm": ("PAB-CREST-CEJ", "Alveolar crest to CEJ level, crest apical positive"),
                "pab_centroid_x_mm": ("PAB-CENTROID-X", "PAB centroid x in tooth frame, palatal positive"),
                "pab_centroid_y_mm": ("PAB-CENTROID-Y", "PAB centroid y in tooth frame, apical positive")})
    for key, (value, meaning) in own.items():
        out[key] = SrItem(key, "PAB", local(value, meaning))
    names = {"pab_area_mm2": ("PAB-AREA", "PAB area"), "enamel_area_mm2": ("ENAMEL-AREA", "Enamel area"),
             "pab_height_mm": ("PAB-HEIGHT", "PAB height along the long axis"),
             "root_length_mm": ("ROOT-LENGTH", "Root length, CEJ midpoint to apex"),
             "crown_length_mm": ("CROWN-LENGTH", "Crown length, CEJ level to incisal edge"),
             "axis_tilt_deg": ("AXIS-TILT", "Long-axis tilt from image vertical")}
    for key, (value, meaning) in names.items():
        item = out[key]
        out[key] = SrItem(item.key, item.group, item.concept, item.finding_site, local(value, meaning))
    missing = [k.key for k in MEASUREMENT_KEYS if k.key not in out]
    if missing:  # a new measurement key must be given a place in the SR
        raise RuntimeError(f"no SR item for measurement keys {missing}")
    return out


SR_ITEMS: dict[str, SrItem] = _items()
UNIT_OF = {k.key: k.unit for k in MEASUREMENT_KEYS}
