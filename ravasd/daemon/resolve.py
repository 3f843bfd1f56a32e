"""Turn the config's ``auto`` choices into what exists on this machine, once, at daemon start.

:func:`resolve` runs in the main process before any worker starts. It returns the concrete config,
one plain line per missing part (what is missing and how to fix it) and the resources it opened
(the virtual mic), which the daemon closes at stop. An explicit choice that cannot work raises
:class:`DeviceError`/:class:`ConfigError` instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..devices import pulse, virtual
from ..devices.display import NO_DISPLAY_FIX, display_available
from ..devices.listing import camera_available, input_exists
from ..engine.messages import Routes
from ..errors import ConfigError, DeviceError
from ..name_checks import check_names
from ..video.sinks import open_virtual_camera


@dataclass
class Resources:
    """What the daemon opened at start-up and must close at stop (main process only)."""

    mic_backend: Any = None
    mic: virtual.MicEndpoint | None = None  # passed to the audio worker

    def routes(self) -> Routes:
        return Routes(audio_out=self.mic)

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
                raise ConfigError(
                    f"{kind}.source is 'file' but files.input is not set.",
                    "set files.input to a media file, or choose another source.",
                )
            if section.sink == "file" and not cfg.files.output:
                raise ConfigError(
                    f"{kind}.sink is 'file' but files.output is not set.",
                    "set files.output (e.g. recording.mp4), or choose another sink.",
                )
    _check_files(cfg)
    if cfg.video.enabled and cfg.video.sink == "preview" and not display_available():
        raise DeviceError(
            "video.sink is 'preview', but there is no display to show the window on.",
            NO_DISPLAY_FIX + ", or choose another sink.",
        )
    if cfg.video.enabled:
        changes.update(_video_source(cfg, notes))
    pulse_info = pulse.server_info() if sys.platform.startswith("linux") else None
    if cfg.audio.enabled:
        changes.update(_audio_source(cfg, pulse_info, notes))
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


def _check_files(cfg: Config) -> None:
    """A media file to play must be readable and hold the streams asked of it; a recording needs a
    supported extension and an existing, writable folder — checked before anything starts."""

    from ..media.reader import probe
    from ..media.writer import output_kind

    readers = [k for k in ("video", "audio") if getattr(cfg, k).enabled and getattr(cfg, k).source == "file"]
    if readers and cfg.files.input:
        info = probe(cfg.files.input)  # MediaError: missing, unreadable, no decodable stream
        for k in readers:
            if not getattr(info, f"has_{k}"):
                other = "--video-source demo" if k == "video" else "--audio-source demo (or mic)"
                raise ConfigError(
                    f"Input file {cfg.files.input} has no {k} stream, but {k}.source is 'file'.",
                    f"pass {other}, or --no-{k}.",
                )
    writers = [k for k in ("video", "audio") if getattr(cfg, k).enabled and getattr(cfg, k).sink == "file"]
    if writers and cfg.files.output:
        out = Path(cfg.files.output)
        kind = output_kind(out)  # MediaError naming the supported extensions
        if "video" in writers and kind != "video":
            raise ConfigError(
                f"Recording {out}: video is recorded, so the file must be .mp4, .mkv or .mov.",
                "name a video file, or record audio only (--no-video).",
            )
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise ConfigError(f"Recording {out}: the folder {folder} does not exist.", "create it first.")
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"Recording {out}: the folder {folder} is not writable.", "pick another folder.")


def _video_source(cfg: Config, notes: list[str]) -> dict[str, object]:
    """``video.source: auto`` → camera when ``video.camera`` opens, else the demo (with a note)."""
    if cfg.video.source != "auto":
        return {}
    if camera_available(cfg.video.camera):
        return {"video.source": "camera"}
    notes.append(
        f"camera: no camera at {cfg.video.camera!r}; using the built-in demo source. "
        "Fix: connect a camera or set video.camera (see `ravasd devices`)."
    )
    return {"video.source": "demo"}


def _audio_source(cfg: Config, pulse_info: dict | None, notes: list[str]) -> dict[str, object]:
    """``audio.source: auto/mic`` → a concrete microphone (the sound server's default pinned now — a
    real one, never RAVAS Mic or a monitor) or, for auto, the demo voice (with a note)."""
    changes: dict[str, object] = {}
    if cfg.audio.source in ("auto", "mic") and cfg.audio.input_device is None and pulse_info:
        default = str(pulse_info.get("default_source_name") or "")
        if virtual.is_microphone(default):
            changes["audio.input_device"] = default
        elif cfg.audio.source == "auto":
            notes.append(
                "microphone: the sound server has no microphone (only monitors); using the built-in "
                "demo voice. Fix: connect a microphone or set audio.input_device (see `ravasd devices`)."
            )
            return {"audio.source": "demo"}
    if cfg.audio.source == "auto":
        wanted = cfg.audio.input_device
        if (
            "audio.input_device" in changes
            or input_exists(wanted)
            or (isinstance(wanted, str) and pulse_info and pulse.find_source(wanted))
        ):
            changes["audio.source"] = "mic"
        else:
            changes["audio.source"] = "demo"
            what = "none found" if wanted is None else f"{wanted!r} not found"
            notes.append(
                f"microphone: {what}; using the built-in demo voice. "
                "Fix: connect a microphone or set audio.input_device (see `ravasd devices`)."
            )
    return changes


def resolve_source(key: str, requested: Config, current: Config) -> Config:
    """A live change of ``key`` (a source or device setting): ``current`` with that stream's source
    made concrete from ``requested`` (the user's choice, may be auto). A camera or microphone that is
    chosen but not there raises :class:`DeviceError` (the setting is then not saved)."""
    kind = key.split(".")[0]
    if kind == "video":
        v = requested.video
        if (v.source == "camera" or key == "video.camera") and not camera_available(v.camera):
            raise DeviceError(
                f"video.camera: camera {v.camera!r} cannot be opened.",
                "pick one that `ravasd devices` lists, or the demo source (video.source demo).",
            )
        changes = {"video.source": v.source, "video.camera": v.camera, **_video_source(requested, [])}
        return current.replace(**changes)
    if kind == "audio":
        a = requested.audio
        pulse_info = pulse.server_info() if sys.platform.startswith("linux") else None
        if a.input_device is not None and (a.source in ("auto", "mic") or key == "audio.input_device"):
            if not (
                input_exists(a.input_device)
                or (isinstance(a.input_device, str) and pulse_info and pulse.find_source(a.input_device))
            ):
                raise DeviceError(
                    f"audio.input_device: microphone {a.input_device!r} not found.",
                    "pick one that `ravasd devices` lists, or null for the system default.",
                )
        changes = {
            "audio.source": a.source,
            "audio.input_device": a.input_device,
            **_audio_source(requested, pulse_info, []),
        }
        return current.replace(**changes)
    return current


def virtual_camera_error(cfg: Config) -> DeviceError | None:
    """None when the virtual camera opens at the configured size (it is closed again), else why not."""
    try:
        open_virtual_camera(cfg.video.width, cfg.video.height, cfg.video.fps).close()
        return None
    except DeviceError as err:
        return err
    except Exception as err:  # pyvirtualcam backends raise assorted errors
        return DeviceError(str(err), virtual.camera_fix())
