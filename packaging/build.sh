#!/usr/bin/env bash
# Stand-alone desktop app: a PyInstaller one-folder build in dist/mailstats/, from a clean
# clone on a fresh Debian/Ubuntu machine. Installs what the build needs (a venv of its own in
# build/venv with mailstats, its report libraries and PyInstaller; the Qt runtime libraries,
# so the build can bundle what Qt's X11 plugin links to), builds, then checks the result:
# `dist/mailstats/mailstats demo` must run headless and write the demo's CSV files, and
# `dist/mailstats/mailstats` must open its window on an X server (Xvfb, started here on a
# free display and stopped by pid). Prints the time taken and the folder's size.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v objdump >/dev/null 2>&1 || need+=(binutils)  # PyInstaller reads ELF headers
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
for pair in libEGL.so.1:libegl1 libGL.so.1:libgl1 libfontconfig.so.1:libfontconfig1 \
            libxkbcommon.so.0:libxkbcommon0 libxkbcommon-x11.so.0:libxkbcommon-x11-0 \
            libdbus-1.so.3:libdbus-1-3 libxcb-icccm.so.4:libxcb-icccm4 \
            libxcb-keysyms.so.1:libxcb-keysyms1 libxcb-cursor.so.0:libxcb-cursor0 \
            libxcb-image.so.0:libxcb-image0 libxcb-render-util.so.0:libxcb-render-util0 \
            libxcb-shape.so.0:libxcb-shape0 libxcb-xkb.so.1:libxcb-xkb1 \
            libxcb-randr.so.0:libxcb-randr0; do
  ldconfig -p 2>/dev/null | grep -q "${pair%%:*}" || need+=("${pair##*:}")
done
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v xwininfo >/dev/null 2>&1 || need+=(x11-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x build/venv/bin/python ]; then
  python3 -m venv build/venv
fi
build/venv/bin/python -m pip install -q --disable-pip-version-check '.[report]' 'pyinstaller>=6.3'
rm -rf dist/mailstats build/pyi
build/venv/bin/python -m PyInstaller packaging/mailstats.spec --noconfirm --log-level WARN \
  --distpath dist --workpath build/pyi

app=dist/mailstats/mailstats
check=$(mktemp -d)
xvfb_pid=""
cleanup() {
  if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; fi
  rm -rf "$check"
}
trap cleanup EXIT

# headless: the demo, with no display at all
env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM HOME="$check" \
  "$app" demo --out "$check/demo" -q
test -s "$check/demo/summary.csv" && test -s "$check/demo/manifest.json"
# no display: one line and exit 2, not Qt's abort
set +e
env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM "$app" 2>"$check/nodisplay.txt"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--batch" "$check/nodisplay.txt" || {
  echo "build check: without a display the app exited $rc:"; cat "$check/nodisplay.txt"; exit 1; }

# the window, on a real X server
n=90
while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.2; done
env -u QT_QPA_PLATFORM -u WAYLAND_DISPLAY DISPLAY=":$n" HOME="$check" \
  XDG_CONFIG_HOME="$check/config" XDG_CACHE_HOME="$check/cache" \
  PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring "$app" 2>"$check/window.txt" &
app_pid=$!
opened=""
for _ in $(seq 60); do
  if xwininfo -root -tree -display ":$n" 2>/dev/null | grep -q "which header checks"; then
    opened=yes; break
  fi
  kill -0 "$app_pid" 2>/dev/null || break
  sleep 0.5
done
kill "$app_pid" 2>/dev/null || true
wait "$app_pid" 2>/dev/null || true
[ -n "$opened" ] || { echo "build check: the window did not open:"; cat "$check/window.txt"; exit 1; }

elapsed=$(( $(date +%s) - started ))
size=$(du -sh dist/mailstats | cut -f1)
echo "built dist/mailstats/ ($size) in ${elapsed} s; demo headless: ok; window on Xvfb: ok"
