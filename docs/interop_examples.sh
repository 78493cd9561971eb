#!/usr/bin/env bash
# Runs every command shown in docs/interop.md in a scratch folder and prints what it prints.
#   bash docs/interop_examples.sh [WORK_DIR]     (needs ../shared/data/real/dicom/CT_small.dcm)
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/dentseg-interop.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
export PYTHONPATH=$REPO
run() { printf '$'; printf ' %q' "$@"; echo; python -m dentseg_gui.cli "${@:2}"; echo "(exit $?)"; echo; }

run dentseg phantom cases -n 2 --seed 3
run dentseg export labelme cases --out labelme
run dentseg import labelme labelme --out imported
run dentseg measure cases/case_0003.dentseg.json imported/case_0003.dentseg.json --csv roundtrip.csv
cut -d, -f1-4 roundtrip.csv; echo

# a labelme file as another group would have drawn it: their own label names, the image embedded
python - <<'PY'
import base64, json, shutil
d = json.load(open("labelme/case_0004.json"))
rename = {"PAB": "bone", "enamel": "crown enamel", "CEJ_labial": "cej_l", "CEJ_palatal": "cej_p", "apex": "root apex"}
for s in d["shapes"]:
    s["label"] = rename[s["label"]]
d["shapes"].append({"label": "caries", "points": [[10, 10], [20, 10], [20, 20]], "group_id": None,
                    "description": "", "shape_type": "polygon", "flags": {}, "mask": None})
d["imageData"] = base64.b64encode(open("cases/case_0004.png", "rb").read()).decode()
d["imagePath"] = "case_0004.png"
d.pop("dentseg")
import os; os.makedirs("theirs", exist_ok=True)
json.dump(d, open("theirs/case_0004.json", "w"), indent=2)
PY
run dentseg import labelme theirs/case_0004.json --out theirs_cases
run dentseg import labelme theirs/case_0004.json --out theirs_cases --spacing 0.15 --map bone=PAB "crown enamel=enamel" cej_l=CEJ_labial cej_p=CEJ_palatal "root apex=apex"

run dentseg export coco cases --out coco/annotations.json
run dentseg import coco coco/annotations.json --images coco --out from_coco

# a DICOM slice (a real CT image) with a hand-made annotation
cp "$REPO/../shared/data/real/dicom/CT_small.dcm" dicom_case.dcm
python - <<'PY'
from shapely.geometry import MultiPolygon, Polygon
from dentseg_gui.core.annotation import Annotation, save_annotation
pab = Polygon([(70, 30), (90, 30), (92, 80), (75, 85)], [[(78, 50), (84, 50), (84, 60), (78, 60)]])
enamel = Polygon([(40, 90), (60, 88), (62, 110), (45, 112)])
regions = {"PAB": MultiPolygon([pab]), "enamel": MultiPolygon([enamel])}
cej = {"CEJ_labial": (45.0, 85.0), "CEJ_palatal": (68.0, 82.0)}
save_annotation(Annotation("dicom_case.dcm", 128, 128, None, regions, {**cej, "apex": (72.0, 25.0)}),
                "dicom_case.dentseg.json")
save_annotation(Annotation("no_apex.dcm", 128, 128, None, regions, cej), "no_apex.dentseg.json")
PY
cp dicom_case.dcm no_apex.dcm
run dentseg export dicom dicom_case.dentseg.json no_apex.dentseg.json cases/case_0003.dentseg.json --out dicom_out
for f in dicom_out/*.dcm; do echo "\$ dciodvfy $f"; dciodvfy "$f" 2>&1 | grep -v '^Warning' ; echo "($(dciodvfy "$f" 2>&1 | grep -c '^Error') errors, $(dciodvfy "$f" 2>&1 | grep -c '^Warning') warnings: $(dciodvfy "$f" 2>&1 | grep '^Warning' | sed 's/ for value.*//; s/^Warning - //' | sort | uniq -c | sed 's/^ *//' | paste -sd ';' -))"; done
echo
python - <<'PY'
import highdicom as hd
sr = hd.sr.srread("dicom_out/dicom_case_sr.dcm")
seg = hd.seg.segread("dicom_out/dicom_case_seg.dcm")
print("highdicom read-back:", seg.SOPClassUID.name, seg.number_of_segments, "segments;", sr.SOPClassUID.name,
      "patient", sr.PatientID, "same study as SEG:", sr.StudyInstanceUID == seg.StudyInstanceUID)
def show(sr, limit=99):
  for g in list(sr.content.get_planar_roi_measurement_groups()) + list(sr.content.get_image_measurement_groups()):
    print(f"group {g.finding_type.meaning!r}")
    for m in g.get_measurements()[:limit]:
        site = f" [{m.finding_sites[0].value.meaning}]" if m.finding_sites else ""
        print(f"  NUM  ({m.name.value}, {m.name.scheme_designator}) {m.name.meaning}{site}: {m.value:.3f} {m.unit.value}")
    qs = g.get_qualitative_evaluations()
    for q in qs[:limit]:
        print(f"  CODE ({q.name.value}, {q.name.scheme_designator}) {q.name.meaning} = {q.value.meaning} ({q.value.value}, {q.value.scheme_designator})")
    if len(qs) > limit:
        print(f"  ... {len(qs) - limit} more CODE items like these")
show(sr)
print()
print("no_apex_sr.dcm (apex not placed):")
show(hd.sr.srread("dicom_out/no_apex_sr.dcm"), limit=2)
PY
