"""Build each stream's runner from the config, and resolve ``auto`` choices at start-up.

:func:`resolve` runs once in the daemon (main process) and turns ``auto`` into concrete choices,
returning one plain line per missing part (what is missing and how to fix it). :func:`build`
runs inside a stream's worker process and returns a ready :class:`StreamRunner`.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .engine.runner import StreamRunner
from .errors import ConfigError, DeviceError

log = logging.getLogger(__name__)


def block_size(cfg: Config) -> int:
    return max(1, int(round(cfg.audio.sample_rate * cfg.audio.block_ms / 1000)))


def output_parts(cfg: Config) -> dict[str, Path]:
    """Where each stream's file sink writes; with both streams the parts are muxed at stop."""
    out = Path(cfg.files.output or "")
    both = cfg.video.enabled and cfg.audio.enabled and cfg.video.sink == "file" and cfg.audio.sink == "file"
    if not both:
        return {"video": out, "audio": out}
    return {"video": out.with_name(f".{out.stem}.video.mp4"), "audio": out.with_name(f".{out.stem}.audio.wav")}


@dataclass
class Resources:
    """What the daemon opened at start-up and must close at stop (main process only)."""

    mic_backend: Any = None
    mic: Any = None  # MicEndpoint passed to the audio worker

    def routes(self) -> dict[str, Any]:
        return {"audio_out": self.mic}

    def close(self) -> None:
        if self.mic_backend is not None:
            self.mic_backend.close()
            self.mic_backend = None


def resolve(cfg: Config, open_devices: bool = True) -> tuple[Config, list[str], Resources]:
    """Replace ``auto`` sources/sinks by what exists here and open the virtual mic.

    Returns (concrete config, one line per missing part with its fix, resources to close).
    An explicit choice that cannot work raises :class:`DeviceError`/:class:`ConfigError`.
    """
    from .devices import pulse, virtual

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
        from .video.sources import camera_available

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
        if ("audio.input_device" in changes or _input_exists(wanted)
                or (isinstance(wanted, str) and pulse_info and pulse.find_source(wanted))):
            changes["audio.source"] = "mic"
        else:
            changes["audio.source"] = "demo"
            what = "none found" if wanted is None else f"{wanted!r} not found"
            notes.append(f"microphone: {what}; using the built-in demo voice. "
                         "Fix: connect a microphone or set audio.input_device (see `ravasd devices`).")
    if cfg.video.enabled and cfg.video.sink in ("auto", "virtual"):
        err = _virtual_camera_error(cfg)
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


def _input_exists(device: int | str | None) -> bool:
    """Whether PortAudio has an input device ``device`` (None: a default input)."""
    try:
        import sounddevice as sd

        sd.query_devices(device, kind="input")
        return True
    except Exception:
        return False


def _virtual_camera_error(cfg: Config) -> DeviceError | None:
    from .devices.virtual import open_virtual_camera

    try:
        open_virtual_camera(cfg.video.width, cfg.video.height, cfg.video.fps).close()
        return None
    except DeviceError as err:
        return err
    except Exception as err:  # pyvirtualcam backends raise assorted errors
        return DeviceError(str(err), "see drivers/ for your OS.")


def build(kind: str, cfg: Config, routes: dict[str, Any] | None = None) -> StreamRunner:
    """Create the runner for ``kind`` ('video'/'audio') in the calling (worker) process.

    ``routes`` carries what the main process opened for this worker (the virtual mic endpoint).
    """
    return _build_video(cfg, routes or {}) if kind == "video" else _build_audio(cfg, routes or {})


def _level_reader(routes: dict[str, Any]):
    shared = routes.get("audio_level")
    return (lambda: tuple(shared[:])) if shared is not None else None


def voice_shape(samples: np.ndarray, rate: int) -> tuple[float, float, float]:
    """(RMS level, roundness, spread) of a block: the share of spectral energy below 1 kHz ("oh/oo"
    vowels) and above 2.5 kHz ("ee", sibilants), for visemes. Zeros for silence."""
    if len(samples) == 0:
        return 0.0, 0.0, 0.0
    rms = float(np.sqrt(np.mean(np.square(samples))))
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    f = np.fft.rfftfreq(len(samples), 1.0 / rate)
    total = spec[(f >= 80) & (f < 6000)].sum()
    if total <= 1e-12:
        return rms, 0.0, 0.0
    return rms, float(spec[(f >= 80) & (f < 1000)].sum() / total), float(spec[(f >= 2500) & (f < 6000)].sum() / total)


class LevelTap:
    """Wraps an audio sink and publishes the shape of what it plays (anonymized audio only) into a
    shared array the video worker reads: the avatar's mouth follows the voice when no face is seen."""

    def __init__(self, sink: Any, shared: Any) -> None:
        self.sink, self.shared = sink, shared
        self.clocked = getattr(sink, "clocked", False)

    def write(self, block: Any) -> None:
        self.sink.write(block)
        for i, v in enumerate(voice_shape(block.samples, block.rate)):
            self.shared[i] = 0.7 * self.shared[i] + 0.3 * v

    def __getattr__(self, name: str) -> Any:  # latency, flush, underruns, dropped …
        return getattr(self.sink, name)

    def close(self) -> None:
        for i in range(len(self.shared)):
            self.shared[i] = 0.0
        self.sink.close()


def _build_video(cfg: Config, routes: dict[str, Any]) -> StreamRunner:
    from .devices.virtual import open_virtual_camera
    from .video import sinks, sources
    from .video.converters import make_video_converter

    v = cfg.video
    w, h, fps = v.width, v.height, v.fps
    source = {
        "camera": lambda: sources.CameraSource(v.camera, w, h, fps),
        "demo": lambda: sources.DemoVideoSource(min(w, 640), min(h, 480), fps),
        "file": lambda: sources.FileVideoSource(cfg.files.input, cfg.files.loop),
    }[_concrete(v.source, "video.source")]
    sink = {
        "virtual": lambda: open_virtual_camera(w, h, fps),
        "preview": sinks.PreviewSink,
        "file": lambda: sinks.FileVideoSink(output_parts(cfg)["video"], w, h, fps),
        "null": sinks.NullVideoSink,
    }[_concrete(v.sink, "video.sink")]
    check_names(cfg)  # fail fast on an unknown name, in the caller
    level = _level_reader(routes)
    return StreamRunner("video", source=source, converter=lambda: make_video_converter(cfg, w, h, level), sink=sink,
                        period=1.0 / fps, deadline=v.deadline_ms / 1000,
                        hang_timeout=cfg.engine.hang_timeout_ms / 1000, width=w, height=h)


def _open_mic(device: int | str | None, rate: int, block: int):
    """Open a microphone by PortAudio name/index, or by PulseAudio source name/description."""
    from .audio.sources import MicSource
    from .devices import pulse

    if isinstance(device, str) and sys.platform.startswith("linux") and pulse.server_info() is not None:
        name = pulse.find_source(device)
        if name is not None:
            import os

            pid = os.getpid()
            return MicSource(pulse.route("input", name), rate, block, label=device,
                             guard=lambda: pulse.capture_moved(pid, name))
        if device not in ("pulse", "default") and not _input_exists(device):
            # never let the sound server fall back to another input (a monitor of the speakers, say):
            # a missing microphone means silence until it is back
            raise DeviceError(f"Microphone {device!r} is not there (unplugged?).",
                              "plug it in again, or pick another with audio.input_device.")
    return MicSource(device, rate, block)



def _open_virtual_out(endpoint: Any, rate: int, block: int, max_latency: float):
    from .audio.sinks import DeviceAudioSink
    from .devices import pulse

    if endpoint is None:
        raise DeviceError("the virtual mic was not opened by the daemon.")
    device = pulse.route("output", endpoint.pulse_sink) if endpoint.pulse_sink else endpoint.device
    return DeviceAudioSink(device, rate, block, max_latency)


def _build_audio(cfg: Config, routes: dict[str, Any]) -> StreamRunner:
    from .audio import sinks, sources
    from .audio.voices import make_voice

    a = cfg.audio
    rate, block = a.sample_rate, block_size(cfg)
    source = {
        "mic": lambda: _open_mic(a.input_device, rate, block),
        "demo": lambda: sources.DemoAudioSource(rate, block),
        "file": lambda: sources.FileAudioSource(cfg.files.input, rate, block, cfg.files.loop),
    }[_concrete(a.source, "audio.source")]
    sink = {
        "virtual": lambda: _open_virtual_out(routes.get("audio_out"), rate, block, a.max_latency_ms / 1000),
        "device": lambda: sinks.DeviceAudioSink(a.output_device, rate, block, a.max_latency_ms / 1000),
        "file": lambda: sinks.FileAudioSink(output_parts(cfg)["audio"], rate),
        "null": sinks.NullAudioSink,
    }[_concrete(a.sink, "audio.sink")]
    check_names(cfg)
    if routes.get("audio_level") is not None:
        inner, shared = sink, routes["audio_level"]
        sink = lambda: LevelTap(inner(), shared)  # noqa: E731
    return StreamRunner("audio", source=source, converter=lambda: make_voice(cfg, rate, block=block), sink=sink,
                        period=block / rate, deadline=a.deadline_ms / 1000,
                        hang_timeout=cfg.engine.hang_timeout_ms / 1000, rate=rate, block=block,
                        max_backlog=max(2, int(a.max_latency_ms / a.block_ms)))


def _concrete(value: str, key: str) -> str:
    if value == "auto":
        raise ConfigError(f"{key} is still 'auto' in a worker; call pipelines.resolve() first.")
    return value




def check_names(cfg: Config) -> None:
    """Raise :class:`ConfigError` (listing the choices) for an unknown video converter or voice."""
    from .audio.voices import VOICES
    from .video.converters import VIDEO_CONVERTERS

    if cfg.video.converter not in VIDEO_CONVERTERS:
        raise ConfigError(f"video.converter: unknown converter {cfg.video.converter!r}.",
                          f"choose one of: {', '.join(sorted(VIDEO_CONVERTERS))} (`ravasd converters`).")
    if cfg.audio.voice not in VOICES:
        raise ConfigError(f"audio.voice: unknown voice {cfg.audio.voice!r}.",
                          f"choose one of: {', '.join(sorted(VOICES))} (`ravasd voices list`).")
    if cfg.audio.enabled:
        from .audio.voices import make_voice

        make_voice(cfg, cfg.audio.sample_rate).close()  # e.g. an LPC voice at 44.1 kHz: say so now


def converter_factory(kind: str, cfg: Config, routes: dict[str, Any] | None = None):
    """A factory for the converter that ``cfg`` selects (used for live swaps); checks the name now."""
    check_names(cfg)
    if kind == "video":
        from .video.converters import make_video_converter

        level = _level_reader(routes or {})
        return lambda: make_video_converter(cfg, cfg.video.width, cfg.video.height, level)
    from .audio.voices import make_voice

    return lambda: make_voice(cfg, cfg.audio.sample_rate, block=block_size(cfg))


def preview_factory():
    from .video.sinks import PreviewSink

    return PreviewSink
