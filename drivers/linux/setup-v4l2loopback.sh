#!/usr/bin/env bash
# One-time setup of the "RAVAS Camera" virtual webcam on Linux (v4l2loopback). Idempotent.
# Usage: sudo drivers/linux/setup-v4l2loopback.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
if ! modinfo v4l2loopback >/dev/null 2>&1; then
  if command -v apt-get >/dev/null; then
    apt-get install -y v4l2loopback-dkms "linux-headers-$(uname -r)"
  elif command -v dnf >/dev/null; then
    dnf install -y v4l2loopback
  elif command -v pacman >/dev/null; then
    pacman -S --needed --noconfirm v4l2loopback-dkms
  else
    echo "install the v4l2loopback kernel module with your package manager, then rerun" >&2; exit 1
  fi
fi
install -m 644 "$here/ravas-v4l2loopback.conf" /etc/modprobe.d/ravas-v4l2loopback.conf
install -m 644 "$here/ravas-v4l2loopback-load.conf" /etc/modules-load.d/ravas-v4l2loopback.conf
if lsmod | grep -q '^v4l2loopback'; then
  if ! grep -qs "RAVAS Camera" /sys/devices/virtual/video4linux/*/name; then
    modprobe -r v4l2loopback || { echo "v4l2loopback is in use; close apps using cameras and rerun" >&2; exit 1; }
  fi
fi
lsmod | grep -q '^v4l2loopback' || modprobe v4l2loopback
grep -ls "RAVAS Camera" /sys/devices/virtual/video4linux/*/name | sed 's|/sys/devices/virtual/video4linux/\(.*\)/name|RAVAS Camera is /dev/\1|'
