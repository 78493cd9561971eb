#!/usr/bin/env bash
# Smoke test of the built standalone app: the GUI renders the demo to a PNG, and the
# CLI predicts, measures and exports the bundled demo case. Runs from a scratch folder
# with no Python environment on PATH, so everything must come from the bundle.
#
#   bash packaging/smoke_app.sh DIST_DIR/dentseg [WORK_DIR]
set -euo pipefail
APP=$(cd "${1:?give the app folder, e.g. dist/dentseg}" && pwd)
CT=$(cd "$(dirname "$0")/.." && pwd)/../shared/data/real/dicom/CT_small.dcm
WORK=${2:-$(mktemp -d /tmp/dentseg-smoke.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
export DENTSEG_USER_DATA="$WORK/userdata" QT_QPA_PLATFORM=offscreen
unset PYTHONPATH DENTSEG_RESOURCES
export PATH=/usr/bin:/bin
t() { local s; s=$(date +%s.%N); "$@"; printf '   (%.1f s)\n' "$(echo "$(date +%s.%N) - $s" | bc)"; }

echo "== app: $APP ($(du -sh "$APP" | cut -f1))"
echo "== dentseg-gui --demo --screenshot"
t "$APP/dentseg-gui" --demo --screenshot "$WORK/demo.png"
test -s "$WORK/demo.png"
DEMO="$APP/_internal/dentseg_gui/bundled/demo/demo_case.png"
echo "== dentseg predict (bundled demo image)"
t "$APP/dentseg" predict "$DEMO" --spacing 0.125 --out "$WORK/pred"
echo "== dentseg measure"
t "$APP/dentseg" measure "$WORK/pred/demo_case.dentseg.json" --csv "$WORK/pred/report.csv"
cp "$DEMO" "$WORK/pred/"
echo "== dentseg export labelme + coco"
t "$APP/dentseg" export labelme "$WORK/pred" --out "$WORK/labelme"
t "$APP/dentseg" export coco "$WORK/pred" --out "$WORK/coco/annotations.json"
if [ -f "$CT" ]; then
    echo "== dentseg predict + export dicom (a real CT slice: highdicom inside the bundle)"
    mkdir -p "$WORK/dicom" && cp "$CT" "$WORK/dicom/"
    t "$APP/dentseg" predict "$WORK/dicom/CT_small.dcm" --out "$WORK/dicom"
    t "$APP/dentseg" export dicom "$WORK/dicom/CT_small.dentseg.json" --out "$WORK/dicom/out"
fi
echo "OK: the app ran the GUI and the CLI from $WORK"
