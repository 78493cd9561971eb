"""DICOM export of a case whose image is a DICOM file: a SEG and a TID 1500 SR.

* **SEG** (Segmentation Storage, BINARY): one segment per non-empty region (PAB,
  enamel), rasterised on the source image's pixel grid with DentSeg's pixel-centre
  rule, referencing the source image (and its frame, for a multi-frame source).
* **SR** (Comprehensive SR, TID 1500 Measurement Report): every measurement of
  ``core.measurements`` recomputed from the regions and landmarks, as a NUM item with
  UCUM units (mm, mm2, deg) and a code (``dicom_codes``). PAB and enamel measurements
  sit in TID 1410 planar-ROI groups that reference their SEG segment; the tooth's own
  (root and crown length, axis tilt) in a TID 1501 group referencing the source image.
  A measurement that cannot be made has no NUM item: a CODE item in its group names the
  key (its ``99DENTSEG`` code) with the value "Measurement not attempted" (DCM 114007,
  CID 42). The free-text reason stays in the ``.dentseg.json`` and the CSV report.

Both are built by highdicom from the source dataset, so they keep its patient, study and
frame of reference. Segments and groups say whether the model made a region (algorithm
LU-Net, AUTOMATIC), a person edited the model's output (SEMIAUTOMATIC) or drew it (MANUAL).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..annotation import REGIONS, Annotation
from ..atomic import atomic_write_with
from ..errors import DentsegError
from ..geometry import geometry_to_mask
from ..measurements import measure
from . import dicom_codes as dc
from .common import (CaseRef, InteropError, InteropResult, ProgressFn, StopFn, steps,
                     unexpected)

SEG_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
_GROUP_CODE = {"PAB": dc.PAB, "enamel": dc.ENAMEL}


def _version() -> str:
    from ... import __version__
    return __version__


def read_dicom_source(image_path: Path) -> tuple[Any, int | None, tuple[float, float] | None]:
    """(pydicom dataset, frame index DentSeg shows, its pixel spacing) of a case's DICOM
    image; a clear ``InteropError`` when the image is not DICOM."""
    import pydicom
    from ..image_io import load_image

    img = load_image(image_path)
    if img.kind != "dicom":
        raise InteropError(f"{image_path.name}: DICOM export needs a DICOM source image, and this case's "
                           f"image is {img.kind.upper()}; open the DICOM slice in DentSeg (or make one with "
                           "`dentseg slice`) and export that case, or use labelme/COCO export for this one")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(image_path)
    return ds, img.meta.get("frame_index"), img.spacing_mm


def _region_source(ann: Annotation, name: str) -> str:
    """'AUTOMATIC' (model output as predicted), 'SEMIAUTOMATIC' (edited model output) or 'MANUAL'."""
    p = ((ann.provenance or {}).get("regions") or {}).get(name)
    if isinstance(p, dict) and p.get("source") == "model":
        return "SEMIAUTOMATIC" if (p.get("edited_by_hand") or p.get("edited")) else "AUTOMATIC"
    return "MANUAL"


def _model_name_and_version(ann: Annotation) -> tuple[str, str]:
    prov = ann.provenance or {}
    pred = prov.get("prediction") if isinstance(prov.get("prediction"), dict) else prov
    model = pred.get("model") or "LU-Net"
    if isinstance(model, dict):
        model = model.get("name") or "LU-Net"
    sha = pred.get("model_sha256") or ""
    return str(model)[:64], (str(sha)[:16] or _version())


def build_segmentation(ds: Any, ann: Annotation, frame_index: int | None) -> tuple[Any, list[str]]:
    """The SEG dataset and the region names in segment order (None if no region is drawn)."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    rows, cols = int(ds.Rows), int(ds.Columns)
    if (ann.width, ann.height) != (cols, rows):
        raise InteropError(f"{ann.image_path}: the annotation is {ann.width}x{ann.height} pixels but the "
                           f"DICOM image is {cols}x{rows}; it belongs to another image")
    names, masks = [], []
    for name in REGIONS:
        m = geometry_to_mask(ann.region(name), (rows, cols))
        if m.any():
            names.append(name)
            masks.append(m)
    if not names:
        return None, []
    stack = np.stack(masks, axis=-1).astype(np.uint8)[None]    # (1 frame, rows, cols, segments)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        full = np.zeros((frames, rows, cols, len(names)), np.uint8)
        full[frame_index if frame_index is not None else frames // 2] = stack[0]
        stack = full
    model, version = _model_name_and_version(ann)
    descriptions = []
    for number, name in enumerate(names, start=1):
        kind = _region_source(ann, name)
        algo = None if kind == "MANUAL" else hd.AlgorithmIdentificationSequence(
            name=model, family=dc.AI_FAMILY, version=version)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name,
            segmented_property_category=dc.ANATOMICAL_STRUCTURE,
            segmented_property_type=dc.BONE if name == "PAB" else dc.ENAMEL,
            algorithm_type=kind, algorithm_identification=algo,
            tracking_uid=generate_uid(), tracking_id=f"DentSeg {name}",
            anatomic_regions=[dc.MAXILLA if name == "PAB" else dc.INCISOR]))
    seg = hd.seg.Segmentation(
        source_images=[ds], pixel_array=stack, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="DentSeg", manufacturer_model_name="DentSeg", software_versions=_version(),
        device_serial_number="0", content_label="DENTSEG",
        content_description="Palatal alveolar bone and enamel (DentSeg)",
        series_description="DentSeg segmentation")
    return seg, names


def _measurement_items(ann: Annotation, group: str) -> tuple[list, list]:
    """(NUM measurements, 'not attempted' CODE evaluations) of one group."""
    import highdicom as hd

    ms = measure(ann)
    nums, missing = [], []
    for key, item in dc.SR_ITEMS.items():
        if item.group != group:
            continue
        v = ms.values.get(key)
        if v is None:
            missing.append(hd.sr.QualitativeEvaluation(name=item.key_code, value=dc.NOT_ATTEMPTED))
            continue
        sites = [hd.sr.FindingSite(item.finding_site)] if item.finding_site is not None else None
        nums.append(hd.sr.Measurement(name=item.concept, value=float(v), unit=dc.UNITS[dc.UNIT_OF[key]],
                                      finding_sites=sites))
    return nums, missing


def _segment_reference(ds: Any, seg: Any, segment_number: int, frame_index: int | None) -> Any:
    """TID 1410's reference to one segment's frame, with the source image referenced as it
    is: by frame number only when the source has frames (``from_segmentation`` would give
    a single-frame CT the SEG's frame number)."""
    import highdicom as hd

    def segment_of(item: Any) -> int | None:
        ident = item.get("SegmentIdentificationSequence")
        return int(ident[0].ReferencedSegmentNumber) if ident else None

    shared = segment_of(seg.SharedFunctionalGroupsSequence[0])   # one segment: said once for all frames
    frame = next(i + 1 for i, item in enumerate(seg.PerFrameFunctionalGroupsSequence)
                 if (segment_of(item) or shared) == segment_number)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    source_frames = [(frame_index if frame_index is not None else frames // 2) + 1] if frames > 1 else None
    return hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, frame_number=frame,
        segment_number=segment_number,
        source_image=hd.sr.SourceImageForSegmentation(ds.SOPClassUID, ds.SOPInstanceUID, source_frames))


def _drop_segment_number_beside_frame(items: Any) -> None:
    """PS3.3 C.18.3 (SR image reference): Referenced Segment Number and Referenced Frame
    Number exclude each other (dciodvfy: "shall not be present"), but highdicom's TID 1410
    reference writes both. A SEG frame belongs to exactly one segment, so the frame number
    alone still names the segment; the segment number is dropped."""
    for item in items:
        for ref in item.get("ReferencedSOPSequence", []):
            if "ReferencedFrameNumber" in ref and "ReferencedSegmentNumber" in ref:
                del ref.ReferencedSegmentNumber
        if "ContentSequence" in item:
            _drop_segment_number_beside_frame(item.ContentSequence)


def build_report(ds: Any, ann: Annotation, seg: Any, seg_names: Sequence[str],
                 frame_index: int | None = None) -> Any:
    """The Comprehensive SR (TID 1500) of ``ann``'s measurements."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["DentSeg measurement software"]), name="DentSeg",
            manufacturer_name="DentSeg", model_name=f"DentSeg {_version()}"))
    context = hd.sr.ObservationContext(observer_device_context=device)
    source = hd.sr.SourceImageForMeasurementGroup.from_source_image(ds)
    model, version = _model_name_and_version(ann)
    groups = []
    for group in ("PAB", "enamel", "incisor"):
        nums, missing = _measurement_items(ann, group)
        tracking = hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"DentSeg {group}")
        common = dict(tracking_identifier=tracking, measurements=nums or None,
                      qualitative_evaluations=missing or None)
        if group in seg_names:
            kind = _region_source(ann, group)
            algo = None if kind == "MANUAL" else hd.sr.AlgorithmIdentification(
                name=model, version=version, family=dc.AI_FAMILY)
            ref = _segment_reference(ds, seg, seg_names.index(group) + 1, frame_index)
            groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                referenced_segment=ref, finding_type=_GROUP_CODE[group],
                finding_sites=[hd.sr.FindingSite(dc.MAXILLA if group == "PAB" else dc.INCISOR)],
                algorithm_id=algo, **common))
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                finding_type=_GROUP_CODE.get(group, dc.INCISOR), source_images=[source], **common))
    modality = str(ds.get("Modality", ""))
    procedure = codes.SCT.ComputedTomography if modality == "CT" else codes.SCT.ImagingProcedure
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                     imaging_measurements=groups)
    evidence = [ds] + ([seg] if seg is not None else [])
    from highdicom.coding_schemes import CodingSchemeIdentificationItem
    scheme = CodingSchemeIdentificationItem(designator=dc.SCHEME, name=dc.SCHEME_NAME,
                                            responsible_organization="DentSeg project")
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence, content=report, series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="DentSeg", is_complete=True, is_final=False, is_verified=False,
        series_description="DentSeg measurements", coding_schemes=[scheme])
    _drop_segment_number_beside_frame(sr.ContentSequence)
    return sr


def _save(ds: Any, path: Path) -> None:
    atomic_write_with(path, lambda f: ds.save_as(f, enforce_file_format=True))


def export_dicom_case(case: CaseRef, out_dir: Path) -> list[Path]:
    """Write ``<stem>_seg.dcm`` (if a region is drawn) and ``<stem>_sr.dcm`` for one case."""
    ds, frame, spacing = read_dicom_source(case.image_path)
    ann = case.annotation
    if spacing is not None and ann.pixel_spacing_mm != spacing:
        ann = ann.copy()          # the DICOM's own PixelSpacing wins (DESIGN.md)
        ann.pixel_spacing_mm = spacing
    try:
        seg, names = build_segmentation(ds, ann, frame)
        sr = build_report(ds, ann, seg, names, frame)
    except DentsegError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # highdicom checks the source: say which file and why, not a traceback
        raise InteropError(f"{case.image_path.name}: cannot build DICOM SEG/SR from this source "
                           f"({type(exc).__name__}: {str(exc)[:300]})") from None
    stem = Path(case.annotation.image_path).stem
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if seg is not None:
        _save(seg, out_dir / f"{stem}_seg.dcm")
        written.append(out_dir / f"{stem}_seg.dcm")
    _save(sr, out_dir / f"{stem}_sr.dcm")
    written.append(out_dir / f"{stem}_sr.dcm")
    return written


def export_dicom(cases: Sequence[CaseRef], out_dir: str | os.PathLike, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> InteropResult:
    out = Path(out_dir)
    res = InteropResult()
    for k, case in steps(cases, res, progress, should_stop):
        try:
            files = export_dicom_case(case, out)
        except DentsegError as exc:
            res.problems.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not end a batch
            res.problems.append(unexpected(case.name, exc))
            continue
        res.written.extend(files)
        if len(files) == 1:
            res.notes.append(f"{case.name}: no region drawn, so no SEG; the SR marks the area "
                             "measurements 'not attempted'")
    if progress:
        progress(len(cases), len(cases), "")
    return res
