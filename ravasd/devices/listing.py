"""Enumerate cameras, microphones, outputs and the virtual devices RAVAS publishes to.

Pure discovery: nothing is opened for longer than a probe, nothing is changed.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2

from .virtual import CAMERA_LABEL, MIC_NAME


def camera_available(camera: int | str) -> bool:
    """Whether OpenCV can open ``camera`` (index or path); the device is released at once."""
    cap = cv2.VideoCapture(camera)
    try:
        return cap.isOpened()
    finally:
        cap.release()


def input_exists(device: int | str | None) -> bool:
    """Whether PortAudio has an input device ``device`` (None: a default input)."""
    try:
        # PortAudio is a system library that may be missing: only a probe needs it, so it loads here
        import sounddevice as sd  # PortAudio is a system library that may be missing

        sd.query_devices(device, kind="input")
        return True
    except Exception:
        return False


def cameras() -> list[dict[str, Any]]:
    """Video capture devices. Linux reads sysfs (no device is opened); elsewhere indices 0..3 are probed."""
    out = []
    if sys.platform.startswith("linux"):
        for name_file in sorted(glob.glob("/sys/class/video4linux/video*/name")):
            node = Path(name_file).parent.name
            name = Path(name_file).read_text().strip()
            out.append(
                {
                    "index": int(node[5:]),
                    "path": f"/dev/{node}",
                    "name": name,
                    "virtual": name == CAMERA_LABEL or "loopback" in name.lower(),
                }
            )
        return out
    for i in range(4):
        if camera_available(i):
            out.append({"index": i, "path": None, "name": f"camera {i}", "virtual": False})
    return out


def audio_devices() -> dict[str, list[dict[str, Any]]]:
    """PortAudio inputs and outputs (name, index, channels, default rate, host API)."""
    try:
        import sounddevice as sd  # PortAudio may be missing: reported as an error, not a crash

        devs = sd.query_devices()
        apis = sd.query_hostapis()
    except Exception as err:  # PortAudio missing or broken
        return {"inputs": [], "outputs": [], "error": str(err)}  # type: ignore[dict-item]
    ins, outs = [], []
    for d in devs:
        row = {
            "index": d["index"],
            "name": d["name"],
            "rate": int(d["default_samplerate"]),
            "hostapi": apis[d["hostapi"]]["name"],
        }
        if d["max_input_channels"] > 0:
            ins.append(dict(row, channels=d["max_input_channels"]))
        if d["max_output_channels"] > 0:
            outs.append(dict(row, channels=d["max_output_channels"]))
    return {"inputs": ins, "outputs": outs}


def pulse_devices() -> dict[str, list[dict[str, str]]] | None:
    """Sources and sinks of a running PulseAudio/PipeWire-pulse server, or None when none answers."""
    if not shutil.which("pactl"):
        return None
    result: dict[str, list[dict[str, str]]] = {}
    for kind in ("sources", "sinks"):
        try:
            r = subprocess.run(["pactl", "--format=json", "list", kind], capture_output=True, text=True, timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if r.returncode != 0:
            return None
        try:
            items = json.loads(r.stdout or "[]")
        except json.JSONDecodeError:
            return None
        result[kind] = [{"name": i.get("name", ""), "description": i.get("description", "")} for i in items]
    return result


def list_all() -> dict[str, Any]:
    pulse = pulse_devices()
    cams = cameras()
    return {
        "cameras": cams,
        **audio_devices(),
        "pulse": pulse,
        "virtual": {
            "camera": next((c["path"] for c in cams if c["name"] == CAMERA_LABEL), None),
            "mic": next((s["name"] for s in (pulse or {}).get("sources", []) if s["description"] == MIC_NAME), None),
        },
    }
