"""Decode media files (any container/codec FFmpeg reads) into raw frames and audio chunks.

Used by ``ravasd anonymize`` and by the live file sources. All errors are :class:`MediaError`
naming the file and what to do.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    stated: float = 0.0  # seconds the file's header says it holds (FFmpeg clamps a WAV's to the file size)


@dataclass
class DecodeReport:
    """What :func:`iter_media` decoded, filled in as it goes (for :func:`incomplete`)."""

    frames: int = 0  # video frames
    samples: int = 0  # audio samples at the caller's rate
    errors: int = 0  # packets that could not be decoded and were skipped
    stopped: str = ""  # why decoding ended before the end of the file, if it did


#: A file may decode this much shorter than its header says (encoder padding, rounding), beyond it
#: it is truncated: the larger of an absolute and a relative slack.
SHORT_SLACK_S, SHORT_SLACK = 0.5, 0.02


def incomplete(info: MediaInfo, report: DecodeReport, audio_rate: int) -> str:
    """Why a decoded file is not whole (one phrase), or "" when it is: decoding errors, decoding
    stopped early, or less media than its header states (beyond the slack)."""
    decoded = max(
        report.frames / (info.fps or 25.0) if info.has_video else 0.0,
        report.samples / audio_rate if info.has_audio and audio_rate else 0.0,
    )
    why = []
    if report.stopped:
        why.append(f"decoding stopped after {decoded:.2f} s ({report.stopped})")
    if report.errors:
        why.append(f"{report.errors} packet(s) could not be decoded")
    if info.stated and decoded < info.stated - max(SHORT_SLACK_S, SHORT_SLACK * info.stated):
        why.append(f"its header states {info.stated:.2f} s but only {decoded:.2f} s decode")
    return "; ".join(why)


def _wav_data_seconds(path: Path) -> float:
    """Seconds of audio a RIFF/WAVE file's header states (its data chunk's size), or 0 when unknown
    (not a WAV, no data chunk yet, or the 'size unknown' marker of a streaming writer)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0.0
            rate = align = 0
            for _ in range(64):  # chunks before 'data': fmt, LIST, fact…
                hdr = fh.read(8)
                if len(hdr) < 8:
                    return 0.0
                tag, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if tag == b"fmt ":
                    fmt = fh.read(size + size % 2)
                    if len(fmt) < 14:
                        return 0.0
                    rate, align = struct.unpack_from("<I", fmt, 4)[0], struct.unpack_from("<H", fmt, 12)[0]
                elif tag == b"data":
                    if not rate or not align or size in (0, 0xFFFFFFFF):
                        return 0.0
                    return size / align / rate
                else:
                    fh.seek(size + size % 2, 1)
    except OSError:
        return 0.0
    return 0.0


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError(f"Input file {path} does not exist.", "check the path and spelling.")
    if path.is_dir():
        raise MediaError(f"Input {path} is a folder, not a media file.", "name one video or audio file.")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise MediaError(
            f"Input file {path} is not a readable media file ({_reason(err)}).",
            "check that it plays in a media player; re-export it as MP4 (H.264/AAC) or WAV if it is damaged.",
        ) from None


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
                raise MediaError(
                    f"Input file {path}: no decoder for its streams' codecs.", "re-export it as MP4 (H.264/AAC) or WAV."
                )
            raise MediaError(
                f"Input file {path} has neither a video nor an audio stream.",
                "give a video (mp4, avi, mkv, mov) or audio (wav, flac, mp3) file.",
            )
        dur = float(c.duration / av.time_base) if c.duration else 0.0
        fps = 0.0
        if vs is not None:
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            fps = float(rate) if rate else 25.0
            if vs.duration and vs.time_base:
                dur = max(dur, float(vs.duration * vs.time_base))
        stated = max(dur, _wav_data_seconds(path) if c.format.name == "wav" else 0.0)
        return MediaInfo(
            path,
            vs is not None,
            as_ is not None,
            vs.codec_context.width if vs else 0,
            vs.codec_context.height if vs else 0,
            fps,
            dur,
            as_.codec_context.sample_rate if as_ else 0,
            vs.codec_context.name if vs else "",
            as_.codec_context.name if as_ else "",
            stated,
        )


def iter_media(
    path: str | Path, audio_rate: int, video: bool = True, audio: bool = True, report: DecodeReport | None = None
) -> Iterator[RawFrame | RawAudio]:
    """Yield raw video frames (RGB) and mono float32 audio chunks at ``audio_rate`` in file order.

    Timestamps are seconds from the first packet of the file (so a stream that starts late
    keeps its offset). Undecodable packets in the middle are skipped; a file that breaks before
    any output raises :class:`MediaError`. ``report`` (when given) counts what was decoded, the
    skipped packets and an early stop, for :func:`incomplete`.
    """
    path = Path(path)
    report = report if report is not None else DecodeReport()
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
                    report.errors += 1
                    continue  # a damaged packet: skip it like players do
                for frame in frames:
                    if isinstance(frame, av.VideoFrame):
                        ts = float(frame.time - start) if frame.time is not None else last_vts + fallback_dt
                        last_vts = ts
                        img = frame.to_ndarray(format="rgb24")
                        yield RawFrame(img, ts, index)
                        index += 1
                        produced += 1
                        report.frames += 1
                    else:
                        if audio_pos is None:
                            audio_pos = max(0.0, float(frame.time - start)) if frame.time is not None else 0.0
                        for out in resampler.resample(frame):
                            samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                            yield RawAudio(samples, audio_rate, audio_pos)
                            audio_pos += len(samples) / audio_rate
                            produced += 1
                            report.samples += len(samples)
            for out in resampler.resample(None):
                samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                yield RawAudio(samples, audio_rate, audio_pos or 0.0)
                produced += 1
                report.samples += len(samples)
        except (av.error.FFmpegError, ValueError) as err:  # ValueError: a frame PyAV cannot convert
            if produced == 0:
                raise MediaError(
                    f"Input file {path} could not be decoded ({_reason(err)}).",
                    "re-export it as MP4 (H.264/AAC) or WAV.",
                ) from None
            report.stopped = _reason(err)
            logging.getLogger(__name__).warning("%s: decoding stopped early: %s", path, _reason(err))
