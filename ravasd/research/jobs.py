"""One job of ``ravasd anonymize``: a file, the record the manifest keeps of it, and the run that
anonymizes it — shared by the local engine (:mod:`.batch`) and the Ray engine (:mod:`.cluster`),
which both only plan and collect."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config, to_dict
from ..media.formats import VIDEO_OUT
from ..media.reader import probe
from ..model_files import sha256


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes. ``rel``: the output path below OUTDIR without its
    extension (the input tree mirrored); the job picks the extension from what the file holds."""

    input: str  # absolute path
    rel: str
    size: int
    mtime_ns: int
    duration: float  # media seconds (the container's estimate; 0 when unreadable)
    allow_truncated: bool = False  # anonymize what decodes of a truncated/damaged input (recorded)


def config_digest(cfg: Config) -> str:
    """sha256 of the settings that shape an anonymized file (the video and audio sections)."""
    d = to_dict(cfg)
    blob = json.dumps({"video": d["video"], "audio": d["audio"]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------ planning
def output_suffix(input_path: str, has_video: bool) -> str:
    """Video stays in its container when it is one we write (.mp4/.mkv/.mov), else .mp4; audio
    becomes .flac when it was FLAC, else .wav (lossless either way)."""
    ext = Path(input_path).suffix.lower()
    if has_video:
        return ext if ext in VIDEO_OUT else ".mp4"
    return ".flac" if ext == ".flac" else ".wav"


def single_threaded() -> None:
    """Make this (worker) process use one thread per library, before any of them starts its pool."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LP_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)


def run_job(job: Job, cfg: Config, outdir: str) -> dict[str, Any]:
    """Anonymize one file exactly as a one-file run would; returns its manifest record. Never
    raises for a bad file (the record says ``failed`` and why); runs in a worker process or task."""
    # imported here: a worker process pays for the converters, the coordinator never does
    from .anonymize import anonymize

    t0 = time.monotonic()
    rec = record(job, cfg)
    try:
        rec["input_sha256"] = sha256(job.input)
        info = probe(job.input)
        out = Path(outdir) / (job.rel + output_suffix(job.input, info.has_video))
        out.parent.mkdir(parents=True, exist_ok=True)
        res = anonymize(job.input, out, cfg, progress=False, allow_truncated=job.allow_truncated)
        rec.update(
            status="done",
            output=str(out.relative_to(outdir)),
            output_sha256=sha256(out),
            kind="video" if info.has_video else "audio",
            duration_s=round(res.duration, 3),
            frames=res.frames,
            audio_s=round(res.audio_seconds, 3),
            has_audio=info.has_audio,
            placeholders=res.placeholders,
            converter_errors=res.converter_errors,
            truncated=res.truncated,
            error="",
        )
    except Exception as err:  # a bad file (RavasError), or a library failure on it: recorded, the batch goes on
        rec.update(status="failed", error=f"{type(err).__name__}: {err}")
    rec["wall_s"] = round(time.monotonic() - t0, 3)
    rec["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return rec


# ------------------------------------------------------------------------------ records
def is_done(job: Job, rec: dict[str, Any] | None, digest: str, outdir: Path) -> bool:
    """Whether ``rec`` is a finished run of this very job (a truncated input accepted by an
    ``--allow-truncated`` run counts only while it is allowed)."""
    return bool(
        rec
        and rec.get("status") == "done"
        and rec.get("config_digest") == digest
        and (job.allow_truncated or not rec.get("truncated"))
        and rec.get("input_size") == job.size
        and rec.get("input_mtime_ns") == job.mtime_ns
        and rec.get("input") == job.input
        and (outdir / str(rec.get("output", ""))).is_file()
    )


def record(job: Job, cfg: Config) -> dict[str, Any]:
    """What every manifest record of ``job`` says, done or failed."""
    return {
        "input": job.input,
        "rel": job.rel,
        "input_size": job.size,
        "input_mtime_ns": job.mtime_ns,
        "voice": cfg.audio.voice,
        "video_converter": cfg.video.converter,
        "avatar": cfg.video.avatar,
        "config_digest": config_digest(cfg),
        "ravasd_version": __version__,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "allow_truncated": job.allow_truncated,
    }


def lost_record(job: Job, cfg: Config, why: str) -> dict[str, Any]:
    """The record of a job whose worker was lost (it could not write one itself)."""
    return dict(record(job, cfg), status="failed", error=why, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
