#!/usr/bin/env bash
# Set up RAVAS on a fresh Debian/Ubuntu machine, then run it.
#   ./bootstrap.sh run  [ravasd run options]   start the daemon (demo source when no camera/mic)
#   ./bootstrap.sh test [pytest options]       run the whole test suite
# Installs the Debian packages it needs (as root or through sudo), makes .venv, installs ravasd;
# `run` also puts ravasd on PATH (~/.local/bin) and RAVAS into the applications menu.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  python3 python3-venv python3-gi gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1  # tray (pystray gtk)
  libportaudio2 libasound2-plugins pulseaudio pulseaudio-utils                     # audio devices
  libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri                                      # headless OpenGL
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0           # settings window (Qt xcb)
  libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libfontconfig1 fonts-dejavu-core
  xvfb dbus dbus-x11 procps ffmpeg espeak-ng flite                                 # tests: display, media, speech
)

# Only for the test suite: a PipeWire server, so RAVAS Mic is tested on both sound servers, the
# desktop-entry validator, and Chromium as a real call client (WebRTC through RAVAS Mic).
TEST_PACKAGES=(pipewire pipewire-pulse wireplumber desktop-file-utils chromium)

log() { printf '\033[1mbootstrap:\033[0m %s\n' "$*" >&2; }

install_system_packages() {
  command -v apt-get >/dev/null || { log "no apt-get: install the equivalents of: $*"; return; }
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { log "need root for: ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

make_venv() {
  # $1: pip extras. Debian's python3 + system site-packages gives the tray its GTK bindings (python3-gi).
  local extras="$1" stamp=".venv/.ravas-installed-$1"
  local py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($py --version)"
    "$py" -m venv --system-site-packages .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing ravasd${extras:+ [$extras]} and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    if [[ "$extras" == *eval* || "$extras" == *torch* ]]; then
      # The eval extra (speaker encoder) and the torch extra (exporting the neural voices) need torch:
      # pin the CPU build (unpinned = GBs of CUDA).
      .venv/bin/python -m pip install -q torch==2.13.0
    fi
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}

cmd="${1:-run}"
shift || true
if [ "$cmd" = test ]; then
  install_system_packages "${APT_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
else
  install_system_packages "${APT_PACKAGES[@]}"
fi
if [ "$cmd" = test ]; then make_venv test,eval,cluster,gui,torch; else make_venv gui; fi
export OPENBLAS_NUM_THREADS=1
case "$cmd" in
  run)
    # ravasd on PATH (~/.local/bin), an applications-menu entry and the icon, for this user
    .venv/bin/ravasd desktop install || log "could not add RAVAS to the desktop (see above); .venv/bin/ravasd still works"
    exec .venv/bin/ravasd run "$@" ;;
  test) exec .venv/bin/python -m pytest "$@" ;;
  *)    log "usage: ./bootstrap.sh run|test [options]"; exit 2 ;;
esac
