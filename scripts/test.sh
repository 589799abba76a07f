#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine too: installs what the tests need (Dovecot,
# dnsmasq, the Qt runtime libraries, the Python dependencies in .venv) when it is missing,
# then runs ruff and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
[ -x /usr/sbin/dnsmasq ] || command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Qt's offscreen platform still loads these shared libraries.
for lib in libEGL.so.1 libfontconfig.so.1 libxkbcommon.so.0 libdbus-1.so.3 libGL.so.1 \
           libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-cursor.so.0; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need+=("$lib")
done
# A real X server for the test that opens the window, and the packaging metadata checkers.
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v xauth >/dev/null 2>&1 || need+=(xauth)
command -v xwininfo >/dev/null 2>&1 || need+=(x11-utils)
command -v desktop-file-validate >/dev/null 2>&1 || need+=(desktop-file-utils)
command -v appstreamcli >/dev/null 2>&1 || need+=(appstream)
if [ ${#need[@]} -gt 0 ]; then
  pkgs=()
  for n in "${need[@]}"; do
    case "$n" in
      libEGL.so.1) pkgs+=(libegl1) ;; libfontconfig.so.1) pkgs+=(libfontconfig1) ;;
      libxkbcommon.so.0) pkgs+=(libxkbcommon0) ;; libdbus-1.so.3) pkgs+=(libdbus-1-3) ;;
      libGL.so.1) pkgs+=(libgl1) ;; libxcb-icccm.so.4) pkgs+=(libxcb-icccm4) ;;
      libxcb-keysyms.so.1) pkgs+=(libxcb-keysyms1) ;; libxcb-cursor.so.0) pkgs+=(libxcb-cursor0) ;;
      *) pkgs+=("$n") ;;
    esac
  done
  echo "installing: ${pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv 2>/dev/null || {
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --system-site-packages .venv
  }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[report,test]'

.venv/bin/python -m ruff check mailstats tests fixtures bench scripts
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
