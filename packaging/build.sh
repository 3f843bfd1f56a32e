#!/usr/bin/env bash
# Build the one-folder PyInstaller app (dist/ravasd/) from this checkout, in its own venv with the
# core install only (no eval/test extras, no torch), then check that it starts.
#   packaging/build.sh            build, then `dist/ravasd/ravasd --version`
# See BUILD.md for macOS and Windows.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x /usr/bin/python3 ] && [ -z "${PYTHON:-}" ] && PY=/usr/bin/python3
VENV=build/bundle-venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q ".[bundle]"   # a real (non-editable) install: what users get
rm -rf dist/ravasd
"$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/ravasd.spec
# it starts, and renders an avatar with its bundled files (no checkout, no network)
dist/ravasd/ravasd --version
check=$(mktemp -d)
HOME="$check" RAVAS_HOME="$check/ravas" dist/ravasd/ravasd render --width 320 --height 240 -o "$check/render.png"
test -s "$check/render.png"
# the settings window opens from the frozen build (offscreen; still open when the timeout ends it)
rc=0
HOME="$check" RAVAS_HOME="$check/ravas" QT_QPA_PLATFORM=offscreen timeout 15 dist/ravasd/ravasd settings \
  >"$check/settings.log" 2>&1 || rc=$?
[ "$rc" = 124 ] || { cat "$check/settings.log"; echo "packaging/build.sh: the settings window did not open (exit $rc)"; exit 1; }
rm -rf "$check"
echo "packaging/build.sh: dist/ravasd/ is ready ($(du -sh dist/ravasd | cut -f1))"
