"""The wiring: which source, converter and sink each stream's runner gets from the config.

Runs inside a stream's worker process (called by the supervisor through :data:`WIRING`), after
the daemon resolved every ``auto`` choice (:mod:`ravasd.daemon.resolve`). Nothing here decides
policy or measures anything: it only connects the stages the config names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .audio import sinks as audio_sinks
from .audio import sources as audio_sources
from .audio.level import LevelTap, MeteredSource
from .audio.voices import make_voice
from .config import Config, block_size
from .engine.messages import Routes
from .engine.runner import AudioPublisher, StreamRunner, VideoPublisher
from .engine.snapshot import FrameTap
from .engine.supervisor import Wiring
from .errors import ConfigError
from .name_checks import check_names
from .video import sinks as video_sinks
from .video import sources as video_sources
from .video.converters import make_video_converter


def output_parts(cfg: Config) -> dict[str, Path]:
    """Where each stream's file sink writes; with both streams the parts are muxed at stop."""
    out = Path(cfg.files.output or "")
    both = cfg.video.enabled and cfg.audio.enabled and cfg.video.sink == "file" and cfg.audio.sink == "file"
    if not both:
        return {"video": out, "audio": out}
    return {"video": out.with_name(f".{out.stem}.video.mp4"), "audio": out.with_name(f".{out.stem}.audio.wav")}


def build(kind: str, cfg: Config, routes: Routes, on_eof: Callable[[], None] | None = None) -> StreamRunner:
    """Create the runner for ``kind`` ('video'/'audio') in the calling (worker) process.

    ``routes`` carries what the main process opened for this worker (the virtual mic endpoint, the
    shared voice-level array)."""
    check_names(cfg)  # fail fast on an unknown name, in the caller
    return (_build_video if kind == "video" else _build_audio)(cfg, routes, on_eof)


def _level_reader(routes: Routes) -> Callable[[], tuple[float, ...]] | None:
    shared = routes.audio_level
    return (lambda: tuple(shared[:])) if shared is not None else None


def _build_video(cfg: Config, routes: Routes, on_eof: Callable[[], None] | None) -> StreamRunner:
    v = cfg.video
    w, h, fps = v.width, v.height, v.fps
    source = {
        "camera": lambda: video_sources.CameraSource(v.camera, w, h, fps),
        "demo": lambda: video_sources.DemoVideoSource(min(w, 640), min(h, 480), fps),
        "file": lambda: video_sources.FileVideoSource(cfg.files.input, cfg.files.loop),
    }[_concrete(v.source, "video.source")]
    sink = {
        "virtual": lambda: video_sinks.open_virtual_camera(w, h, fps),
        "preview": video_sinks.PreviewSink,
        "file": lambda: video_sinks.FileVideoSink(output_parts(cfg)["video"], w, h, fps),
        "null": video_sinks.NullVideoSink,
    }[_concrete(v.sink, "video.sink")]
    return StreamRunner(
        source=source,
        converter=converter_factory("video", cfg, routes),
        sink=sink,
        publisher=VideoPublisher(1.0 / fps, w, h),
        deadline=v.deadline_ms / 1000,
        hang_timeout=cfg.engine.hang_timeout_ms / 1000,
        on_eof=on_eof,
        tap=FrameTap(routes.video_frame) if routes.video_frame is not None else None,
    )


def _build_audio(cfg: Config, routes: Routes, on_eof: Callable[[], None] | None) -> StreamRunner:
    a = cfg.audio
    rate, block = a.sample_rate, block_size(cfg)
    source = {
        "mic": lambda: audio_sources.open_mic(a.input_device, rate, block),
        "demo": lambda: audio_sources.DemoAudioSource(rate, block),
        "file": lambda: audio_sources.FileAudioSource(cfg.files.input, rate, block, cfg.files.loop),
    }[_concrete(a.source, "audio.source")]
    meter = routes.mic_level
    if meter is not None:
        raw_source = source
        source = lambda: MeteredSource(raw_source(), meter)  # noqa: E731
    sink = {
        "virtual": lambda: audio_sinks.open_virtual_out(routes.audio_out, rate, block, a.max_latency_ms / 1000),
        "device": lambda: audio_sinks.DeviceAudioSink(a.output_device, rate, block, a.max_latency_ms / 1000),
        "file": lambda: audio_sinks.FileAudioSink(output_parts(cfg)["audio"], rate),
        "null": audio_sinks.NullAudioSink,
    }[_concrete(a.sink, "audio.sink")]
    shared = routes.audio_level
    return StreamRunner(
        source=source,
        converter=converter_factory("audio", cfg, routes),
        sink=sink,
        publisher=AudioPublisher(block / rate, rate, block),
        deadline=a.deadline_ms / 1000,
        hang_timeout=cfg.engine.hang_timeout_ms / 1000,
        max_backlog=max(2, int(a.max_latency_ms / a.block_ms)),
        on_eof=on_eof,
        tap=LevelTap(shared) if shared is not None else None,
    )


def _concrete(value: str, key: str) -> str:
    if value == "auto":
        raise ConfigError(f"{key} is still 'auto' in a worker; resolve the config first (daemon.resolve).")
    return value


def converter_factory(kind: str, cfg: Config, routes: Routes | None = None) -> Callable[[], Any]:
    """A factory for the converter that ``cfg`` selects (at start and for live swaps); checks the
    names now, builds nothing."""
    check_names(cfg)
    if kind == "video":
        level = _level_reader(routes or Routes())
        return lambda: make_video_converter(cfg, cfg.video.width, cfg.video.height, level, live=True)
    return lambda: make_voice(cfg, cfg.audio.sample_rate, block=block_size(cfg), live=True)


def preview_factory() -> Callable[[], Any]:
    return video_sinks.PreviewSink


#: What the supervisor's workers build with (module-level functions: they pickle by reference).
WIRING = Wiring(build=build, converter=converter_factory, preview=preview_factory)
