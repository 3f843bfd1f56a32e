"""Write anonymized media atomically: H.264/AAC in MP4/MKV/MOV, or WAV/FLAC for audio.

Output goes to a hidden temporary file beside the target; :meth:`MediaWriter.commit` renames it
into place, :meth:`MediaWriter.abort` deletes it. A failed run never leaves a partial file under
the final name (and never overwrites an existing one).
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..engine.frames import AnonAudio, AnonFrame, require_anon
from ..errors import MediaError
from .formats import AUDIO_OUT, VIDEO_OUT

TIME_BASE = Fraction(1, 90000)


def output_kind(path: Path) -> str:
    """'video' or 'audio' from the extension; raises :class:`MediaError` otherwise."""
    ext = path.suffix.lower()
    if ext in VIDEO_OUT:
        return "video"
    if ext in AUDIO_OUT:
        return "audio"
    raise MediaError(
        f"Output {path}: unsupported extension '{ext or '(none)'}'.",
        "use .mp4, .mkv or .mov for video (H.264 + AAC) or .wav / .flac for audio.",
    )


class MediaWriter:
    """Encode frames and audio into ``path`` (via a temp file). Not thread-safe: one writer thread.

    ``width``/``height`` must be even for H.264 (odd sizes are padded by one pixel).
    """

    def __init__(
        self, path: str | Path, *, width: int = 0, height: int = 0, fps: float = 30.0, audio_rate: int = 0
    ) -> None:
        self.path = Path(path)
        kind = output_kind(self.path)
        if not self.path.parent.is_dir():
            raise MediaError(f"Output folder {self.path.parent} does not exist.", "create it first.")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")
        fmt = (VIDEO_OUT | AUDIO_OUT)[self.path.suffix.lower()]
        try:
            # bitexact: no random segment IDs, dates or version strings — the same input and settings
            # give the same bytes (a batch job equals a one-file run, on any machine)
            self.container = av.open(str(self.tmp), mode="w", format=fmt, options={"fflags": "+bitexact"})
        except av.error.FFmpegError as err:
            raise MediaError(
                f"Output {self.path} cannot be written ({err}).", "check that the folder is writable."
            ) from None
        self.vstream = None
        self.astream = None
        self.width, self.height = width + width % 2, height + height % 2
        if kind == "video" and width and height:
            self.vstream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            self.vstream.width, self.vstream.height = self.width, self.height
            self.vstream.pix_fmt = "yuv420p"
            self.vstream.time_base = TIME_BASE
            self.vstream.codec_context.time_base = TIME_BASE  # keep sub-frame timing (live recordings)
            # no B-frames: live recordings have irregular frame times, which B-frame reordering
            # turns into invalid decode timestamps
            # one encoder thread: the same bytes on any machine and in any batch job (x264 output depends
            # on its thread count); encoding is a small part of the work per frame
            self.vstream.options = {"crf": "20", "preset": "veryfast", "bf": "0", "threads": "1"}
        if audio_rate:
            codec = {"mp4": "aac", "mov": "aac", "matroska": "aac", "wav": "pcm_s16le", "flac": "flac"}[fmt]
            self.astream = self.container.add_stream(codec, rate=audio_rate)
            self.astream.layout = "mono"
            self.astream.time_base = Fraction(1, audio_rate)
        if self.vstream is None and self.astream is None:
            self.abort()
            raise MediaError(f"Output {self.path}: nothing to write (no video and no audio).")
        self.audio_rate = audio_rate
        self.fps = fps
        self._apos = 0
        self._last_pts = -1
        self.frames = 0
        self.samples = 0

    def write_frame(self, frame: AnonFrame) -> None:
        require_anon(frame, AnonFrame)
        img = frame.image
        if img.shape[1] != self.width or img.shape[0] != self.height:
            img = _fit(img, self.width, self.height)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        pts = max(int(round(frame.ts / TIME_BASE)), self._last_pts + 1)
        self._last_pts = pts
        vf.pts, vf.time_base = pts, TIME_BASE
        self.container.mux(self.vstream.encode(vf))
        self.frames += 1

    def write_audio(self, block: AnonAudio) -> None:
        require_anon(block, AnonAudio)
        self.write_samples(block.samples)

    def write_samples(self, samples: np.ndarray) -> None:
        """Append anonymized samples (callers pass converter output only)."""
        if self.astream is None or len(samples) == 0:
            return
        data = np.clip(np.nan_to_num(samples.astype(np.float32)), -1, 1)
        af = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="flt", layout="mono")
        af.sample_rate = self.audio_rate
        af.pts, af.time_base = self._apos, Fraction(1, self.audio_rate)
        self._apos += len(data)
        self.samples += len(data)
        self.container.mux(self.astream.encode(af))

    def commit(self) -> Path:
        """Flush encoders and move the file into place."""
        try:
            for st in (self.vstream, self.astream):
                if st is not None:
                    self.container.mux(st.encode(None))
            self.container.close()
        except Exception:
            self.abort()
            raise
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)


class LiveRecording:
    """A :class:`MediaWriter` for a live stream that fails once: the first write or commit error
    (disk full, folder gone) stops the recording, removes its temporary file, logs one line and
    sets :attr:`failed`; later items are discarded. The daemon reads ``failed`` from the stream's
    status to say, at stop, what was kept (publish thread)."""

    ERRORS = (OSError, av.error.FFmpegError, MediaError, ValueError)

    def __init__(self, writer: MediaWriter) -> None:
        self.writer = writer
        self.failed = ""

    def write(self, fn, item) -> None:
        if self.failed:
            return
        try:
            fn(item)
        except self.ERRORS as err:
            self._fail(err)

    def commit(self) -> None:
        if self.failed:
            return
        if not self.writer.frames and not self.writer.samples:
            self.failed = "stopped before anything was recorded"
            self.writer.abort()
            return
        try:
            self.writer.commit()
        except self.ERRORS as err:
            self._fail(err)

    def _fail(self, err: Exception) -> None:

        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        w = self.writer
        secs = w.samples / w.audio_rate if w.samples else w.frames / (w.fps or 30.0)
        self.failed = f"{reason}, after {secs:.1f} s"
        logging.getLogger(__name__).error(
            "recording %s stopped: %s; its partial file was removed", self.writer.path, self.failed
        )
        self.writer.abort()


def _fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pad/crop an image to exactly (height, width) without scaling (odd→even sizes)."""
    out = np.zeros((height, width, 3), np.uint8)
    h, w = min(height, img.shape[0]), min(width, img.shape[1])
    out[:h, :w] = img[:h, :w]
    return out


def mux(video_path: Path, audio_path: Path, out: Path) -> Path:
    """Combine a recorded video-only file and a WAV into ``out`` (video copied, audio → AAC).

    The parts are removed after a successful mux; ``out`` appears atomically.
    """
    tmp = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")
    try:
        with (
            av.open(str(video_path)) as vin,
            av.open(str(audio_path)) as ain,
            av.open(str(tmp), "w", format=VIDEO_OUT.get(out.suffix.lower(), "mp4")) as dst,
        ):
            vin_s = vin.streams.video[0]
            vout = dst.add_stream_from_template(vin_s)
            ain_s = ain.streams.audio[0]
            aout = dst.add_stream("aac", rate=ain_s.codec_context.sample_rate)
            aout.layout = "mono"
            for pkt in vin.demux(vin_s):
                if pkt.dts is None:
                    continue
                pkt.stream = vout
                dst.mux(pkt)
            for frame in ain.decode(ain_s):
                frame.pts = None
                dst.mux(aout.encode(frame))
            dst.mux(aout.encode(None))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    video_path.unlink(missing_ok=True)
    audio_path.unlink(missing_ok=True)
    return out
