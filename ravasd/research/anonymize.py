"""``ravasd anonymize``: run a recorded file through the live stages on a simulated clock.

The converters are the ones the daemon uses, fed with the same chunking (audio in
``audio.block_ms`` blocks, video frame by frame) and the media timeline as clock. Output keeps
the input's duration: the voice's look-ahead is trimmed at the start and flushed at the end, and
every input frame yields exactly one output frame (the placeholder card where a converter fails).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from tqdm import tqdm

from ..audio.voices import make_voice
from ..config import Config, block_size
from ..engine import placeholder
from ..engine.frames import AnonAudio, AnonFrame, RawAudio, RawFrame
from ..engine.guard import ConverterFailed, ConverterGuard
from ..errors import MediaError
from ..media.reader import DecodeReport, incomplete, iter_media, probe
from ..media.writer import MediaWriter, output_kind
from ..video.converters import make_video_converter

log = logging.getLogger(__name__)


@dataclass
class AnonymizeResult:
    output: Path
    frames: int
    audio_seconds: float
    duration: float
    placeholders: int
    converter_errors: int
    truncated: str = ""  # why the input is not whole, when it was accepted anyway (allow_truncated)


class _Guarded:
    """The runner's :class:`ConverterGuard` with the offline fallback: the placeholder for an item the
    converter failed on (the next item gets a fresh instance). The first instance is built at once,
    so a converter that cannot start at all is the user's error, not a file of placeholders."""

    def __init__(self, factory: Callable[[], Any], item_type: type, fallback: Callable[[Any], Any]) -> None:
        self.guard = ConverterGuard(factory, item_type)
        self.conv = self.guard.build()
        self.fallback = fallback
        self.placeholders = 0

    @property
    def errors(self) -> int:
        return self.guard.failures

    def __call__(self, item: Any) -> Any:
        try:
            return self.guard.process(item)
        except ConverterFailed as err:
            self.placeholders += 1
            log.warning("converter failed (%s); placeholder used, converter restarted", err)
            return self.fallback(item)

    def close(self) -> None:
        self.guard.close()


class _AudioTrack:
    """The voice's side of an offline run, its streaming state explicit: input in blocks of
    ``block`` samples (at ``rate``) through the guarded voice, its look-ahead trimmed from the start,
    a late-starting track's offset kept as silence, and at the end the rest fed through with silence
    so that the output is exactly as long as the input."""

    def __init__(self, voice: _Guarded, writer: MediaWriter, rate: int, block: int) -> None:
        self.voice, self.writer, self.rate, self.block = voice, writer, rate, block
        self.pending = np.zeros(0, np.float32)
        self.consumed = 0  # input samples handed to the voice
        self.produced = 0  # output samples written
        self.skip = voice.conv.latency  # the voice's look-ahead, trimmed from the start
        self.limit: int | None = None  # once the input length is known, output stops exactly there
        self.started = False

    def feed(self, item: RawAudio) -> None:
        if not self.started:  # a late-starting audio track keeps its offset
            self.started = True
            self.writer.write_samples(placeholder.silence(int(round(item.ts * self.rate)), self.rate, 0).samples)
        self.pending = np.concatenate([self.pending, item.samples])
        while len(self.pending) >= self.block:
            self._run(self.pending[: self.block])
            self.pending = self.pending[self.block :]

    def finish(self) -> None:
        self.limit = self.consumed + len(self.pending)
        if len(self.pending):
            self._run(np.concatenate([self.pending, np.zeros(self.block - len(self.pending), np.float32)]))
        while self.produced < self.limit:  # flush the look-ahead by feeding silence
            self._run(np.zeros(self.block, np.float32))

    def _run(self, samples: np.ndarray) -> None:
        res = self.voice(RawAudio(samples, self.rate, self.consumed / self.rate))
        self.consumed += len(samples)
        out = res.samples
        if self.skip:
            cut = min(self.skip, len(out))
            out, self.skip = out[cut:], self.skip - cut
        if self.limit is not None:
            out = out[: max(0, self.limit - self.produced)]
        self.writer.write_samples(out)
        self.produced += len(out)


def _check(inp: Path, out: Path, kind: str, info) -> None:
    """Refuse an output that is the input, or that needs a stream the input lacks."""
    if out.exists() and out.resolve() == inp.resolve():
        raise MediaError(f"Output {out} is the input file.", "choose a different output name.")
    if kind == "video" and not info.has_video:
        raise MediaError(
            f"Input {inp} has no video stream, so there is nothing for {out.suffix}.",
            f"write audio instead: -o {out.with_suffix('.wav').name}",
        )
    if kind == "audio" and not info.has_audio:
        raise MediaError(f"Input {inp} has no audio stream.", "use a .mp4 output for a silent video.")


def _progress_bar(inp: Path, duration: float, progress: bool) -> tqdm:
    return tqdm(
        total=round(duration, 2) or None,
        unit="s",
        desc=f"anonymize {inp.name}",
        disable=not progress,
        leave=False,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s",
    )


def _truncation(inp: Path, info, decoded: DecodeReport, rate: int, want_video: bool, allow: bool) -> str:
    """Why the decoded input is not whole ("" when it is); refused unless ``allow``."""
    truncated = incomplete(info, decoded, rate) if (want_video or info.has_audio) else ""
    if truncated and not allow:
        raise MediaError(
            f"Input {inp} is truncated or damaged: {truncated}.",
            "re-export or re-copy it; --allow-truncated anonymizes what decodes (a batch's manifest records it).",
        )
    if truncated:
        log.warning("%s is truncated or damaged (%s); anonymized what decodes (--allow-truncated)", inp, truncated)
    return truncated


def anonymize(
    input_path: str | Path, output_path: str | Path, cfg: Config, progress: bool = True, allow_truncated: bool = False
) -> AnonymizeResult:
    """Anonymize ``input_path`` into ``output_path`` (.mp4/.mkv/.mov or .wav/.flac).

    An input that is not whole — decoding errors, decoding stopped early, or less media than its
    header states (``media.reader.incomplete``) — is refused with that reason and no output, unless
    ``allow_truncated``: then what decodes is anonymized and the reason is in the result."""
    inp, out = Path(input_path), Path(output_path)
    kind = output_kind(out)
    info = probe(inp)
    _check(inp, out, kind, info)
    want_video = kind == "video"
    rate, block = cfg.audio.sample_rate, block_size(cfg)
    width, height = info.width + info.width % 2, info.height + info.height % 2
    video = audio = None
    if want_video:
        video = _Guarded(
            lambda: make_video_converter(cfg, width, height),
            AnonFrame,
            lambda f: placeholder.card(width, height, "no-signal", f.ts),
        )
    if info.has_audio:
        audio = _Guarded(
            lambda: make_voice(cfg, rate, block=block),
            AnonAudio,
            lambda b: placeholder.silence(len(b.samples), rate, b.ts),
        )
    writer = MediaWriter(
        out,
        width=width if want_video else 0,
        height=height if want_video else 0,
        fps=info.fps or 25.0,
        audio_rate=rate if info.has_audio else 0,
    )
    track = _AudioTrack(audio, writer, rate, block) if audio is not None else None
    bar = _progress_bar(inp, info.duration, progress)
    frames, shown = 0, 0.0
    decoded = DecodeReport()
    try:
        for item in iter_media(inp, rate, video=want_video, audio=info.has_audio, report=decoded):
            if isinstance(item, RawFrame):
                res = video(item)
                writer.write_frame(AnonFrame(res.image, item.ts, res.placeholder))
                frames += 1
            else:
                track.feed(item)
            if item.ts - shown >= 0.2:
                bar.update(round(item.ts - shown, 2))
                shown = item.ts
        if track is not None:
            track.finish()
        if frames == 0 and want_video:
            raise MediaError(f"Input {inp}: the video stream has no decodable frames.", "re-export it as MP4 (H.264).")
        truncated = _truncation(inp, info, decoded, rate, want_video, allow_truncated)
        path = writer.commit()
    except (OSError, av.error.FFmpegError) as err:  # the output cannot be written (disk full, /proc…)
        writer.abort()
        bar.close()
        raise MediaError(
            f"Output {writer.path} cannot be written ({getattr(err, 'strerror', None) or err}).",
            "pick a folder on a writable disk with free space.",
        ) from None
    except BaseException:
        writer.abort()
        bar.close()
        raise
    finally:
        for g in (video, audio):
            if g is not None:
                g.close()
    bar.close()
    return AnonymizeResult(
        path,
        frames,
        writer.samples / rate if info.has_audio else 0.0,
        info.duration,
        (video.placeholders if video else 0) + (audio.placeholders if audio else 0),
        (video.errors if video else 0) + (audio.errors if audio else 0),
        truncated,
    )
