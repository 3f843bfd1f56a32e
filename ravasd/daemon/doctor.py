"""``ravasd doctor``: check every part RAVAS needs and print the exact fix for this OS.

Each check returns a :class:`Check`. ``required`` failures make the command exit non-zero;
missing camera/mic/display are warnings because the daemon has fallbacks for them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass

from ..config import Config
from ..devices import pulse
from ..devices.display import display_available
from ..devices.listing import camera_available, cameras, input_exists
from ..devices.virtual import PulseVirtualMic, is_microphone, open_virtual_mic
from ..errors import DeviceError, ModelError, RavasError
from ..model_files import FACE_LANDMARKER, cache_path, find
from ..video.avatar.renderer import create_context
from ..video.sinks import open_virtual_camera
from . import autostart
from .control import request


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | info
    detail: str
    fix: str = ""


def _camera(cfg: Config) -> Check:
    real = [c for c in cameras() if not c["virtual"]] if sys.platform.startswith("linux") else []
    if camera_available(cfg.video.camera):
        return Check("camera", "ok", f"camera {cfg.video.camera!r} opens")
    hint = f"; found: {', '.join(c['path'] for c in real)}" if real else ""
    return Check(
        "camera",
        "warn",
        f"no camera at {cfg.video.camera!r}{hint}; the demo source will be used",
        "connect a camera or set video.camera (`ravasd devices` lists them).",
    )


def _microphone(cfg: Config) -> Check:
    info = pulse.server_info() if sys.platform.startswith("linux") else None
    if cfg.audio.input_device is not None:
        name = cfg.audio.input_device
        if (isinstance(name, str) and info and pulse.find_source(name)) or input_exists(name):
            return Check("microphone", "ok", f"{name!r} found")
        return Check(
            "microphone",
            "warn",
            f"{name!r} not found; the demo voice will be used",
            "set audio.input_device to a name from `ravasd devices`.",
        )
    if info:
        src = str(info.get("default_source_name") or "")
        if is_microphone(src):
            return Check("microphone", "ok", f"default source {src}")
    elif input_exists(None):
        return Check("microphone", "ok", "default input device")
    return Check(
        "microphone",
        "warn",
        "no microphone; the demo voice will be used",
        "connect a microphone or set audio.input_device.",
    )


def _virtual_camera(cfg: Config) -> Check:
    try:
        sink = open_virtual_camera(cfg.video.width, cfg.video.height, cfg.video.fps)
        dev = sink.device
        sink.close()
        return Check("virtual camera", "ok", f"RAVAS Camera at {dev}")
    except DeviceError as err:
        return Check("virtual camera", "fail", err.message, err.fix or "")


def _virtual_mic() -> Check:
    try:  # a running daemon owns the device: do not touch its modules
        st = request("status", timeout=1.0)
        if st.get("ok") and st["status"].get("virtual_mic"):
            return Check("virtual mic", "ok", f"{st['status']['virtual_mic']} (daemon running)")
    except (RavasError, OSError, ValueError):
        pass
    try:  # another user's or instance's daemon made it: fine, and it must not be touched
        other = PulseVirtualMic().existing_owner() if sys.platform.startswith("linux") and pulse.server_info() else None
        if other:
            return Check("virtual mic", "ok", f"RAVAS Mic exists (made by ravasd {other})")
    except Exception:
        pass
    try:
        backend, ep = open_virtual_mic()
        backend.close()
        kind = "created and removed" if getattr(backend, "creates_device", False) else "found"
        return Check("virtual mic", "ok", f"{ep.shown_as} can be {kind} ({ep.backend})")
    except DeviceError as err:
        return Check("virtual mic", "fail", err.message, err.fix or "see drivers/README.md.")  # noqa: E501


def _models(cfg: Config) -> Check:
    try:
        path = find(FACE_LANDMARKER, cfg.models.face_landmarker)
    except ModelError as err:
        return Check("model files", "fail", err.message, err.fix or "")
    if path is None:
        how = "it will be downloaded at first use" if cfg.models.allow_download else "downloads are off"
        return Check(
            "model files",
            "fail",
            f"{FACE_LANDMARKER.name} not found ({how})",
            f"run `ravasd models fetch`, or put it at {cache_path(FACE_LANDMARKER)} or in $RAVAS_MODELS_DIR.",
        )
    try:  # the file must load, not just exist: a configured path is not sha256-pinned
        from ..video.tracking import FaceTracker

        FaceTracker(path).close()
    except Exception as err:
        return Check(
            "model files",
            "fail",
            f"{path} cannot be loaded as a face model ({type(err).__name__}: {str(err)[:160]})",
            f"delete it and run `ravasd models fetch`, or download {FACE_LANDMARKER.url}.",
        )
    return Check("model files", "ok", f"{FACE_LANDMARKER.name} at {path}")


def _opengl() -> Check:
    try:
        ctx = create_context()
        renderer = ctx.info.get("GL_RENDERER", "?")
        ctx.release()
        return Check("OpenGL", "ok", f"{renderer}")
    except Exception as err:
        fix = (
            "sudo apt install libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri"
            if sys.platform.startswith("linux")
            else "update your graphics driver."
        )
        return Check("OpenGL", "fail", f"no OpenGL context ({err})", fix)


def _tray() -> Check:
    if not display_available():
        return Check(
            "tray/display",
            "warn",
            "no display: the daemon runs headless (control with `ravasd ctl`)",
            "run inside a desktop session for the tray icon.",
        )
    try:
        import pystray  # noqa: F401  (the check itself: does it load here?)
    except Exception as err:
        return Check(
            "tray/display",
            "warn",
            f"pystray cannot load ({err})",
            "sudo apt install python3-gi gir1.2-ayatanaappindicator3-0.1 gir1.2-gtk-3.0",
        )
    return Check("tray/display", "ok", "display available")


def _autostart() -> Check:
    st = autostart.status()
    if st["enabled"]:
        return Check("autostart", "ok", "enabled: " + ", ".join(st["where"]))
    return Check("autostart", "info", "not enabled", "`ravasd autostart enable` starts RAVAS at login.")


def _neural_voices(cfg: Config) -> Check:
    """The neural voices: usable ones, and the one fix that makes the rest usable (optional parts:
    info, or fail when the configured voice is one of them)."""
    from ..audio.neural.registry import neural_voices

    voices = neural_voices(cfg)
    usable = [n for n, v in voices.items() if v.available]
    waiting = {v.fix for v in voices.values() if not v.available}
    status = "fail" if cfg.audio.voice in voices and cfg.audio.voice not in usable else ("ok" if usable else "info")
    detail = (f"usable: {', '.join(usable)}" if usable else "none usable") + (
        f"; unavailable: {', '.join(n for n in voices if n not in usable)}" if waiting else ""
    )
    return Check("neural voices", status, detail, "; ".join(sorted(waiting)) if waiting else "")


def run_checks(cfg: Config) -> list[Check]:
    return [
        _camera(cfg),
        _microphone(cfg),
        _virtual_camera(cfg),
        _virtual_mic(),
        _models(cfg),
        _neural_voices(cfg),
        _opengl(),
        _tray(),
        _autostart(),
    ]


def report(checks: list[Check], as_json: bool = False) -> tuple[str, int]:
    code = 1 if any(c.status == "fail" for c in checks) else 0
    if as_json:
        return json.dumps({"ok": code == 0, "checks": [asdict(c) for c in checks]}, indent=2), code
    label = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "info": "INFO"}
    lines = []
    for c in checks:
        lines.append(f"{label[c.status]}  {c.name:<15} {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"      {'':<15} fix: {c.fix}")
    lines.append(
        "All required parts are present."
        if code == 0
        else "Some required parts are missing (FAIL above); RAVAS runs, but those outputs are discarded."
    )
    return "\n".join(lines), code
