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

#: Kyutai's Mimi codec (Mimi-VC voices): fetched only on ``ravasd models fetch mimi``. No public source
#: states its sha256, so :func:`fetch` checks it against the hub's stated LFS digest and records the
#: first download's digest.
MIMI = ModelSpec(
    "tokenizer-e351c8d8-checkpoint125.safetensors",
    "https://huggingface.co/kyutai/moshiko-pytorch-bf16/resolve/main/tokenizer-e351c8d8-checkpoint125.safetensors",
    "",
    "models.mimi",
    "CC-BY-4.0 (Kyutai)",
)


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
            raise ModelError(
                f"{spec.config_key}: {path} does not exist.",
                f"fix the path, or remove the setting to use {cache_path(spec)}.",
            )
        return path
    env = os.environ.get("RAVAS_MODELS_DIR")
    for cand in ([Path(env) / spec.name] if env else []) + [cache_path(spec)]:
        if cand.is_file():
            recorded = cand.with_name(f"{cand.name}.sha256")
            want = spec.sha256 or (recorded.read_text().strip() if recorded.is_file() else "")
            if want and sha256(cand) != want:
                raise ModelError(
                    f"{cand} is corrupt or a different version (sha256 mismatch).",
                    f"delete it and run `ravasd models fetch`, or download {spec.url}.",
                )
            return cand
    return None


def _digest_of(path: Path, h) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def _stated_sha256(headers) -> str | None:
    """The sha256 a download's server states for the file: Hugging Face sends it as the LFS object's
    ETag (``X-Linked-Etag``)."""
    for key in ("X-Linked-Etag", "X-Linked-ETag", "ETag"):
        v = (headers.get(key) or "").strip().strip('"').removeprefix("W/").strip('"')
        if len(v) == 64 and all(c in "0123456789abcdef" for c in v.lower()):
            return v.lower()
    return None


def fetch(spec: ModelSpec, progress: bool = True, dest: Path | None = None) -> Path:
    """Download ``spec`` into the cache, verify its sha256, and move it into place.

    Resumable: a partial ``.download`` file is kept when the transfer breaks and continued with an
    HTTP range request next time. The digest checked is ``spec.sha256``; a spec without one (no
    public source states it) is checked against the digest the server states, and the digest of the
    first complete download is recorded next to the file (``<name>.sha256``) and said so — later
    downloads must match it."""
    dest = dest or cache_path(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recorded = dest.with_name(f"{dest.name}.sha256")
    want = spec.sha256 or (recorded.read_text().strip() if recorded.is_file() else "")
    print(f"Downloading {spec.name} ({spec.licence}) from {spec.url}", file=sys.stderr)
    tmp = dest.with_name(f".{dest.name}.download")
    h = hashlib.sha256()
    have = tmp.stat().st_size if tmp.is_file() else 0
    try:
        req = urllib.request.Request(spec.url, headers={"Range": f"bytes={have}-"} if have else {})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resumed = have and resp.status == 206
            if resumed:
                _digest_of(tmp, h)
                print(f"  resuming after {have / 1e6:.1f} MB", file=sys.stderr)
            else:
                have = 0
            stated = _stated_sha256(resp.headers)
            length = int(resp.headers.get("Content-Length") or 0)
            total = (have + length) if length else None
            with (
                open(tmp, "ab" if resumed else "wb") as out,
                tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not progress, leave=False) as bar,
            ):
                received = 0
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
                    received += len(chunk)
            if length and received < length:  # the server closed early: http.client just stops reading
                raise ConnectionError(f"the connection closed after {received} of {length} bytes")
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        kept = tmp.is_file() and tmp.stat().st_size > 0
        raise ModelError(
            f"Could not download {spec.name} ({reason})"
            + (
                f"; the {tmp.stat().st_size / 1e6:.1f} MB received are kept and the next try continues from there."
                if kept
                else "."
            ),
            f"try again (`ravasd models fetch`), or download {spec.url} by hand and put it at "
            f"{dest} (or point {spec.config_key} or RAVAS_MODELS_DIR at a folder that has it).",
        ) from None
    got = h.hexdigest()
    want = want or stated or ""
    if want and got != want:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"Downloaded {spec.name} failed its sha256 check (got {got[:12]}…, expected {want[:12]}…).",
            "try again later; do not use the file.",
        )
    if not spec.sha256 and not recorded.is_file():
        recorded.write_text(got + "\n")
        print(
            f"  no public source states {spec.name}'s sha256"
            + (" beyond the server's own" if stated else "")
            + f"; recorded {got} at first download ({recorded}); later copies must match it.",
            file=sys.stderr,
        )
    os.replace(tmp, dest)
    return dest


def resolve(spec: ModelSpec, configured: str | None, allow_download: bool, progress: bool = True) -> Path:
    """Find the model, downloading it when missing and allowed; else a :class:`ModelError`."""
    path = find(spec, configured)
    if path is not None:
        return path
    if not allow_download:
        raise ModelError(
            f"{spec.name} is missing and downloads are switched off (models.allow_download).",
            f"put it at {cache_path(spec)}, or set {spec.config_key} / RAVAS_MODELS_DIR.",
        )
    return fetch(spec, progress)
