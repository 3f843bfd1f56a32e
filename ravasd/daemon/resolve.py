"""Turn the config's ``auto`` choices into what exists on this machine, once, at daemon start.

:func:`resolve` runs in the main process before any worker starts. It returns the concrete config,
one plain line per missing part (what is missing and how to fix it) and the resources it opened
(the virtual mic), which the daemon closes at stop. An explicit choice that cannot work raises
:class:`DeviceError`/:class:`ConfigError` instead.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..choices import check_names
from ..config import Config
from ..devices import pulse, virtual
from ..devices.listing import camera_available, input_exists
from ..errors import ConfigError, DeviceError
from ..video.sinks import open_virtual_camera


@dataclass
class Resources:
    """What the daemon opened at start-up and must close at stop (main process only)."""

    mic_backend: Any = None
    mic: virtual.MicEndpoint | None = None  # passed to the audio worker

    def routes(self) -> dict[str, Any]:
        return {"audio_out": self.mic}

    def close(self) -> None:
        if self.mic_backend is not None:
            self.mic_backend.close()
            self.mic_backend = None


def resolve(cfg: Config, open_devices: bool = True) -> tuple[Config, list[str], Resources]:
    """Replace ``auto`` sources/sinks by what exists here and open the virtual mic.

    Returns (concrete config, one line per missing part with its fix, resources to close)."""
    notes: list[str] = []
    changes: dict[str, object] = {}
    res = Resources()
    check_names(cfg)
    for kind in ("video", "audio"):
        section = getattr(cfg, kind)
        if section.enabled and "file" in (section.source, section.sink):
            if section.source == "file" and not cfg.files.input:
                raise ConfigError(f"{kind}.source is 'file' but files.input is not set.",
                                  "set files.input to a media file, or choose another source.")
            if section.sink == "file" and not cfg.files.output:
                raise ConfigError(f"{kind}.sink is 'file' but files.output is not set.",
                                  "set files.output (e.g. recording.mp4), or choose another sink.")
    if cfg.video.enabled and cfg.video.source == "auto":
        if camera_available(cfg.video.camera):
            changes["video.source"] = "camera"
        else:
            changes["video.source"] = "demo"
            notes.append(f"camera: no camera at {cfg.video.camera!r}; using the built-in demo source. "
                         "Fix: connect a camera or set video.camera (see `ravasd devices`).")
    pulse_info = pulse.server_info() if sys.platform.startswith("linux") else None
    if cfg.audio.enabled and cfg.audio.source in ("auto", "mic") and cfg.audio.input_device is None and pulse_info:
        # pin the current default source now: it must be a real microphone, never our own output
        default = str(pulse_info.get("default_source_name") or "")
        if default and not default.endswith(".monitor") and not default.startswith(virtual.PulseVirtualMic.SOURCE):
            changes["audio.input_device"] = default
        elif cfg.audio.source == "auto":
            changes["audio.source"] = "demo"
            notes.append("microphone: the sound server has no microphone (only monitors); using the built-in "
                         "demo voice. Fix: connect a microphone or set audio.input_device (see `ravasd devices`).")
    if cfg.audio.enabled and cfg.audio.source == "auto" and "audio.source" not in changes:
        wanted = cfg.audio.input_device
        if ("audio.input_device" in changes or input_exists(wanted)
                or (isinstance(wanted, str) and pulse_info and pulse.find_source(wanted))):
            changes["audio.source"] = "mic"
        else:
            changes["audio.source"] = "demo"
            what = "none found" if wanted is None else f"{wanted!r} not found"
            notes.append(f"microphone: {what}; using the built-in demo voice. "
                         "Fix: connect a microphone or set audio.input_device (see `ravasd devices`).")
    if cfg.video.enabled and cfg.video.sink in ("auto", "virtual"):
        err = virtual_camera_error(cfg)
        if err is None:
            changes["video.sink"] = "virtual"
        elif cfg.video.sink == "virtual":
            raise err
        else:
            changes["video.sink"] = "null"
            notes.append(f"virtual camera: {err.message.rstrip('.')}; frames are discarded. Fix: {err.fix}")
    if cfg.audio.enabled and cfg.audio.sink in ("auto", "virtual") and open_devices:
        try:
            res.mic_backend, res.mic = virtual.open_virtual_mic()
            changes["audio.sink"] = "virtual"
        except DeviceError as err:
            if cfg.audio.sink == "virtual":
                raise
            changes["audio.sink"] = "null"
            notes.append(f"virtual mic: {err.message.rstrip('.')}; converted audio is discarded. Fix: {err.fix}")
    return (cfg.replace(**changes) if changes else cfg), notes, res


def virtual_camera_error(cfg: Config) -> DeviceError | None:
    """None when the virtual camera opens at the configured size (it is closed again), else why not."""
    try:
        open_virtual_camera(cfg.video.width, cfg.video.height, cfg.video.fps).close()
        return None
    except DeviceError as err:
        return err
    except Exception as err:  # pyvirtualcam backends raise assorted errors
        return DeviceError(str(err), virtual.camera_fix())
