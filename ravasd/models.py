"""Model files: lookup (config path → ``RAVAS_MODELS_DIR`` → user cache) and the one allowed
network access, an announced, sha256-checked download from the official source."""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import paths
from .errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    url: str
    sha256: str
    config_key: str
    licence: str


FACE_LANDMARKER = ModelSpec(
    "face_landmarker.task",
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    "models.face_landmarker",
    "Apache-2.0 (MediaPipe)",
)
MODELS = {FACE_LANDMARKER.name: FACE_LANDMARKER}


def cache_path(spec: ModelSpec) -> Path:
    return paths.cache_dir() / "models" / spec.name


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find(spec: ModelSpec, configured: str | None = None) -> Path | None:
    """The first existing candidate: configured path, ``$RAVAS_MODELS_DIR/name``, the cache."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelError(f"{spec.config_key}: {path} does not exist.",
                             f"fix the path, or remove the setting to use {cache_path(spec)}.")
        return path
    env = os.environ.get("RAVAS_MODELS_DIR")
    for cand in ([Path(env) / spec.name] if env else []) + [cache_path(spec)]:
        if cand.is_file():
            if sha256(cand) != spec.sha256:
                raise ModelError(f"{cand} is corrupt or a different version (sha256 mismatch).",
                                 f"delete it and run `ravasd models fetch`, or download {spec.url}.")
            return cand
    return None


def fetch(spec: ModelSpec, progress: bool = True, dest: Path | None = None) -> Path:
    """Download ``spec`` into the cache, verify its sha256, and move it into place."""

    dest = dest or cache_path(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {spec.name} ({spec.licence}) from {spec.url}", file=sys.stderr)
    tmp = dest.with_name(f".{dest.name}.download")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(spec.url, timeout=30) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, disable=not progress, leave=False) as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise ModelError(f"Could not download {spec.name} ({reason}).",
                         f"download {spec.url} by hand and put it at {dest}, or point {spec.config_key} "
                         "or RAVAS_MODELS_DIR at a folder that has it.") from None
    if h.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"Downloaded {spec.name} failed its sha256 check (got {h.hexdigest()[:12]}…).",
                         "try again later; do not use the file.")
    os.replace(tmp, dest)
    return dest


def resolve(spec: ModelSpec, configured: str | None, allow_download: bool, progress: bool = True) -> Path:
    """Find the model, downloading it when missing and allowed; else a :class:`ModelError`."""
    path = find(spec, configured)
    if path is not None:
        return path
    if not allow_download:
        raise ModelError(f"{spec.name} is missing and downloads are switched off (models.allow_download).",
                         f"put it at {cache_path(spec)}, or set {spec.config_key} / RAVAS_MODELS_DIR.")
    return fetch(spec, progress)
