"""Target pools: a consenting target speaker's feature vectors, and the kNN that swaps them in.

A pool is a folder ``<data dir>/voices/<name>/`` with ``pool.npy`` ((N, D) float32: Mimi latents at
12.5 Hz, or WavLM layer-6 features at 50 Hz) and ``voice.json`` (method, dimension, inputs with their
sha256 and duration, the model digest it was built with). RAVAS's own target files (``torch.save``
of an (N, D) tensor) import without torch: a ``.pt`` file is a zip with a pickle whose tensors
point at raw storages, which :func:`read_torch_tensor` rebuilds with numpy.
"""

from __future__ import annotations

import collections
import json
import pickle
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import paths
from ...errors import ConfigError, ModelError
from .checkpoint import bf16_to_f32

METHODS = {"mimi": 512, "knnvc": 1024}  # method → feature dimension of the published models
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def voices_dir() -> Path:
    return paths.data_dir() / "voices"


@dataclass
class Pool:
    """Target vectors (N, D) and their unit-norm copy; :meth:`convert` is the kNN-VC matching."""

    name: str
    method: str
    vectors: np.ndarray
    meta: dict

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, np.float32)
        if v.ndim != 2 or len(v) == 0 or not np.isfinite(v).all():
            raise ModelError(
                f"voice {self.name}: its pool is not a non-empty (N, D) array of finite numbers.",
                f"build it again (`ravasd voices build {self.name} --from DIR`).",
            )
        self.vectors = v
        self._unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)

    def convert(self, x: np.ndarray, k: int) -> np.ndarray:
        """(T, D) source vectors → (T, D): each replaced by the mean of its k nearest pool vectors
        (cosine similarity), as kNN-VC does. k is capped at the pool size."""
        x = np.asarray(x, np.float32)
        k = max(1, min(int(k), len(self.vectors)))
        xu = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
        sim = xu @ self._unit.T
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else np.argsort(-sim, axis=1)
        return self.vectors[idx].mean(axis=1)


def load(name: str, folder: Path | None = None) -> Pool:
    folder = folder or voices_dir() / name
    try:
        meta = json.loads((folder / "voice.json").read_text())
        vectors = np.load(folder / "pool.npy", allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(
            f"audio.voice: no voice {name!r} in {voices_dir()}.",
            f"build it (`ravasd voices build {name} --from DIR`) or pick another (`ravasd voices list`).",
        ) from None
    except (OSError, ValueError) as err:
        raise ModelError(
            f"voice {name}: {folder} cannot be read ({err}).",
            f"build it again (`ravasd voices build {name} --from DIR --force`).",
        ) from None
    return Pool(name, meta.get("method", "mimi"), vectors, meta)


def installed() -> dict[str, dict]:
    """Neural voices on disk: name → their voice.json (unreadable ones skipped)."""
    out = {}
    root = voices_dir()
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            out[d.name] = json.loads((d / "voice.json").read_text())
        except (OSError, ValueError):
            continue
    return out


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise ConfigError(
            f"voice name {name!r}: use 1–40 lower-case letters, digits, - or _.", "pick a name like `anna` or `anna-2`."
        )


def save(name: str, vectors: np.ndarray, meta: dict, force: bool = False) -> Path:
    """Write the pool atomically (a staging folder renamed into place): a voice is whole or absent."""
    check_name(name)
    root = voices_dir()
    dest = root / name
    if dest.exists() and not force:
        raise ConfigError(
            f"a voice named {name!r} exists already ({dest}).", "choose another name, or pass --force to replace it."
        )
    stage = root / f".{name}.staging"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True, mode=0o700)
    np.save(stage / "pool.npy", np.asarray(vectors, np.float32))
    (stage / "voice.json").write_text(
        json.dumps(
            {**meta, "name": name, "frames": int(len(vectors)), "dimension": int(np.shape(vectors)[1])}, indent=1
        )
    )
    paths.replace_dir(stage, dest)
    return dest


# --- RAVAS .pt files without torch ---------------------------------------------------------------

_DTYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "BFloat16Storage": "bfloat16",
}


def read_torch_tensor(path: Path) -> np.ndarray:
    """The one tensor in a ``torch.save`` file (zip format, torch ≥ 1.6), as float32 — no torch needed.
    Only tensor rebuilding is allowed while unpickling: any other object in the file is refused."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        raise ModelError(
            f"{path} is not a torch.save file (not a zip archive).",
            "pass the .pt file RAVAS wrote (target_feats/…/<name>.pt), or build the voice "
            "from recordings with `ravasd voices build`.",
        ) from None
    with zf:
        pkl = next((n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ModelError(f"{path} holds no data.pkl: not a torch.save file.", "pass RAVAS's .pt target file.")
        root = pkl[: -len("data.pkl")]

        def storage(key: str, dtype) -> np.ndarray:
            raw = zf.read(f"{root}data/{key}")
            if dtype == "bfloat16":
                return bf16_to_f32(np.frombuffer(raw, np.uint8))
            return np.frombuffer(raw, dtype)

        def rebuild(stor, offset, size, stride, *_):
            size, stride = tuple(size), tuple(stride)
            item = stor.itemsize
            return np.lib.stride_tricks.as_strided(stor[offset:], size, tuple(s * item for s in stride)).copy()

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module == "torch._utils" and name == "_rebuild_tensor_v2":
                    return rebuild
                if module == "torch" and name in _DTYPES:
                    return name
                if module == "collections" and name == "OrderedDict":
                    return collections.OrderedDict
                raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a target file")

            def persistent_load(self, pid):
                _, kind, key, _location, _numel = pid
                return storage(key, _DTYPES.get(kind, np.float32))

        try:
            obj = Unpickler(zf.open(pkl)).load()
        except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as err:
            raise ModelError(
                f"{path} cannot be read as a target file ({err}).",
                "pass the (N, D) tensor file RAVAS wrote with torch.save.",
            ) from None
    if not isinstance(obj, np.ndarray) or obj.ndim != 2:
        raise ModelError(
            f"{path} holds {type(obj).__name__}, not an (N, D) tensor.",
            "pass RAVAS's target features file (one tensor per target speaker).",
        )
    return obj.astype(np.float32)
