"""Decode media files (any container/codec FFmpeg reads) into raw frames and audio chunks.

Used by ``ravasd anonymize`` and by the live file sources. All errors are :class:`MediaError`
naming the file and what to do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..engine.frames import RawAudio, RawFrame
from ..errors import MediaError

logging.getLogger("libav").setLevel(logging.ERROR)


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration: float = 0.0  # seconds (container's estimate)
    audio_rate: int = 0
    video_codec: str = ""
    audio_codec: str = ""


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError(f"Input file {path} does not exist.", "check the path and spelling.")
    if path.is_dir():
        raise MediaError(f"Input {path} is a folder, not a media file.", "name one video or audio file.")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise MediaError(f"Input file {path} is not a readable media file ({_reason(err)}).",
                         "check that it plays in a media player; re-export it as MP4 (H.264/AAC) "
                         "or WAV if it is damaged.") from None


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(": '")[0].strip() or type(err).__name__


def _first_decodable(streams, path: Path):
    """The first stream FFmpeg has a decoder for (``codec_context`` is None for unknown codecs)."""
    for st in streams:
        if st.codec_context is not None:
            return st
    return None


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file; raises :class:`MediaError` when it has no decodable stream."""
    path = Path(path)
    with _open(path) as c:
        vs = _first_decodable(c.streams.video, path)
        as_ = _first_decodable(c.streams.audio, path)
        if vs is None and as_ is None:
            if c.streams.video or c.streams.audio:
                raise MediaError(f"Input file {path}: no decoder for its streams' codecs.",
                                 "re-export it as MP4 (H.264/AAC) or WAV.")
            raise MediaError(f"Input file {path} has neither a video nor an audio stream.",
                             "give a video (mp4, avi, mkv, mov) or audio (wav, flac, mp3) file.")
        dur = float(c.duration / av.time_base) if c.duration else 0.0
        fps = 0.0
        if vs is not None:
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            fps = float(rate) if rate else 25.0
            if vs.duration and vs.time_base:
                dur = max(dur, float(vs.duration * vs.time_base))
        return MediaInfo(path, vs is not None, as_ is not None,
                         vs.codec_context.width if vs else 0, vs.codec_context.height if vs else 0, fps, dur,
                         as_.codec_context.sample_rate if as_ else 0,
                         vs.codec_context.name if vs else "", as_.codec_context.name if as_ else "")


def iter_media(path: str | Path, audio_rate: int, video: bool = True, audio: bool = True
               ) -> Iterator[RawFrame | RawAudio]:
    """Yield raw video frames (RGB) and mono float32 audio chunks at ``audio_rate`` in file order.

    Timestamps are seconds from the first packet of the file (so a stream that starts late
    keeps its offset). Undecodable packets in the middle are skipped; a file that breaks before
    any output raises :class:`MediaError`.
    """
    path = Path(path)
    info = probe(path)
    with _open(path) as c:
        streams = []
        vs = _first_decodable(c.streams.video, path) if video else None
        if vs is not None:
            vs.thread_type = "AUTO"
            streams.append(vs)
        as_ = _first_decodable(c.streams.audio, path) if audio else None
        if as_ is not None:
            streams.append(as_)
        if not streams:
            return
        start = float(c.start_time / av.time_base) if c.start_time else 0.0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=audio_rate)
        index = 0
        produced = 0
        fallback_dt = 1.0 / (info.fps or 25.0)
        last_vts = -fallback_dt
        audio_pos: float | None = None
        try:
            for packet in c.demux(streams):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet: skip it like players do
                for frame in frames:
                    if isinstance(frame, av.VideoFrame):
                        ts = float(frame.time - start) if frame.time is not None else last_vts + fallback_dt
                        last_vts = ts
                        img = frame.to_ndarray(format="rgb24")
                        yield RawFrame(img, ts, index)
                        index += 1
                        produced += 1
                    else:
                        if audio_pos is None:
                            audio_pos = max(0.0, float(frame.time - start)) if frame.time is not None else 0.0
                        for out in resampler.resample(frame):
                            samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                            yield RawAudio(samples, audio_rate, audio_pos)
                            audio_pos += len(samples) / audio_rate
                            produced += 1
            for out in resampler.resample(None):
                samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                yield RawAudio(samples, audio_rate, audio_pos or 0.0)
                produced += 1
        except (av.error.FFmpegError, ValueError) as err:  # ValueError: a frame PyAV cannot convert
            if produced == 0:
                raise MediaError(f"Input file {path} could not be decoded ({_reason(err)}).",
                                 "re-export it as MP4 (H.264/AAC) or WAV.") from None
            logging.getLogger(__name__).warning("%s: decoding stopped early: %s", path, _reason(err))


def rate_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)
