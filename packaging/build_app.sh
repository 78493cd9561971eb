#!/usr/bin/env bash
# Build the one-folder standalone app with PyInstaller (not part of the test suite).
#
#   bash packaging/build_app.sh [DIST_DIR]      -> DIST_DIR/dentseg/{dentseg-gui,dentseg,_internal/}
#
# Needs: pip install pyinstaller (and the app's own dependencies, CPU torch). Then run
# packaging/smoke_app.sh DIST_DIR/dentseg to check the result.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${1:-$REPO/dist}
WORK=${PYI_WORK:-$REPO/build/pyinstaller}
start=$SECONDS
python -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" "$REPO/packaging/dentseg.spec"
echo "built $DIST/dentseg in $((SECONDS - start)) s"
du -sh "$DIST/dentseg"
echo "largest parts:"
du -s "$DIST"/dentseg/_internal/* | sort -n | tail -8 | awk '{printf "  %6.1f MB  %s\n", $1/1024, $2}'
