#!/usr/bin/env bash
# Fresh-environment check of the package (issue 15): build the wheel and the sdist,
# install the wheel (not editable) into a new venv, and run `dentseg` and
# `dentseg-gui --demo --screenshot` from a folder outside the checkout, so the
# bundled model and demo must come from the installed package.
#
#   bash packaging/check_wheel.sh [WORK_DIR]        (default: a new folder under /tmp)
#
# torch==2.13.0 is installed first so pip takes the CPU wheel and never a CUDA build.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/dentseg-wheel.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
VENV="$WORK/venv"
export DENTSEG_USER_DATA="$WORK/userdata" QT_QPA_PLATFORM=offscreen
unset DENTSEG_RESOURCES PYTHONPATH
t() { local s=$SECONDS; "$@"; echo "   ($((SECONDS - s)) s)"; }

echo "== build wheel + sdist ($REPO)"
rm -rf "$WORK/dist"
t bash -c "python -m build --outdir \"$WORK/dist\" \"$REPO\" > \"$WORK/build.log\" 2>&1"
ls -l "$WORK"/dist
echo "== sdist carries resources/"
tar tzf "$WORK"/dist/dentseg-*.tar.gz | grep -E 'resources/(lunet\.pt|lunet\.model-card\.json|demo/demo_case\.png|demo/demo_case\.dentseg\.json)$'
echo "== wheel carries dentseg_gui/bundled/"
python -m zipfile -l "$WORK"/dist/dentseg-*.whl | grep -E 'dentseg_gui/bundled/' | awk '{print $1, $NF}'

echo "== fresh venv"
rm -rf "$VENV"
t python -m venv "$VENV"
t "$VENV/bin/pip" install -q torch==2.13.0 2> >(grep -v "^WARNING: Location" >&2)
t "$VENV/bin/pip" install -q "$WORK"/dist/dentseg-*.whl 2> >(grep -v "^WARNING: Location" >&2)
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__)"

cd "$WORK"            # anywhere but the checkout
echo "== resources resolve inside the installed package"
"$VENV/bin/python" -c "from dentseg_gui.resources import bundled_model_path as b, demo_image_path as d; print(b()); print(d()); assert 'site-packages' in str(b()) and b().is_file() and d().is_file()"
echo "== dentseg predict on the bundled demo image"
DEMO=$("$VENV/bin/python" -c "from dentseg_gui.resources import demo_image_path; print(demo_image_path())")
t "$VENV/bin/dentseg" predict "$DEMO" --spacing 0.125 --out "$WORK/pred"
t "$VENV/bin/dentseg" measure "$WORK/pred/demo_case.dentseg.json" --csv "$WORK/pred/report.csv"
echo "== dentseg-gui --demo --screenshot"
t "$VENV/bin/dentseg-gui" --demo --screenshot "$WORK/out.png"
test -s "$WORK/out.png" && python -c "import cv2,sys; im=cv2.imread(sys.argv[1]); print('screenshot', im.shape[1], 'x', im.shape[0], 'px')" "$WORK/out.png"
echo "== installed size"
du -sh "$VENV" "$VENV"/lib/python3*/site-packages/dentseg_gui
echo "OK: wheel installs and runs from $WORK"
