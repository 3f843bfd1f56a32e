"""Reading Kyutai's Mimi checkpoint (safetensors) with numpy: validate before anything is exported.

safetensors is a little-endian u64 header length, a JSON header (name → dtype, shape, byte range)
and the raw tensors; reading it by hand keeps ``models add`` able to say what is wrong with a file
(truncated, another model, wrong shapes) without torch. BF16 becomes float32 by shifting its bits
into the high half of a float32.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ...errors import ModelError
from . import mimi_arch as arch

_DT = {"F32": np.float32, "F16": np.float16, "BF16": "bf16", "F64": np.float64}


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """Raw bfloat16 bytes (uint8 or uint16 view) → float32: the 16 bits are a float32's high half."""
    return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def _header(path: Path) -> tuple[dict, int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelError(f"{path} is empty or truncated ({size} bytes).", _FIX)
        n = struct.unpack("<Q", head)[0]
        if n <= 1 or n > min(size - 8, 100 << 20):
            raise ModelError(f"{path} is not a safetensors file (bad header length).", _FIX)
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise ModelError(f"{path} is not a safetensors file (its header is not JSON).", _FIX) from None
    return header, 8 + n


_FIX = (
    "download Kyutai's tokenizer-e351c8d8-checkpoint125.safetensors again (`ravasd models fetch mimi`), "
    "or pass that file to `ravasd models add mimi FILE`."
)


def read_mimi(path: Path, cfg: arch.MimiConfig = arch.FULL) -> dict[str, np.ndarray]:
    """The parameters :mod:`.mimi_arch` reads, as float32, keyed by their canonical names.
    Raises :class:`ModelError` naming the file and what is missing, mis-shaped or cut off."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist.", _FIX)
    header, base = _header(path)
    size = path.stat().st_size
    found = {arch.canonical(k): v for k, v in header.items() if k != "__metadata__"}
    want = arch.param_shapes(cfg)
    missing = [k for k in want if k not in found]
    if missing:
        raise ModelError(
            f"{path} is not a Mimi checkpoint: {len(missing)} of its {len(want)} tensors are "
            f"missing (e.g. {missing[0]}).",
            _FIX,
        )
    wrong = [k for k, s in want.items() if tuple(found[k].get("shape", ())) != s]
    if wrong:
        k = wrong[0]
        raise ModelError(
            f"{path}: {k} has shape {tuple(found[k]['shape'])}, the published Mimi has {want[k]} "
            "(another model or configuration).",
            _FIX,
        )
    end = max(int(v["data_offsets"][1]) for v in found.values())
    if base + end > size:
        raise ModelError(f"{path} is truncated ({size} of {base + end} bytes).", _FIX)
    data = np.memmap(path, np.uint8, "r")
    out = {}
    for k in want:
        info = found[k]
        dt = _DT.get(info["dtype"])
        if dt is None:
            raise ModelError(f"{path}: {k} is stored as {info['dtype']}, which RAVAS cannot read.", _FIX)
        a, b = (base + int(o) for o in info["data_offsets"])
        raw = np.asarray(data[a:b])
        if dt == "bf16":
            arr = bf16_to_f32(raw)
        else:
            arr = raw.view(dt).astype(np.float32)
        if arr.size != int(np.prod(want[k])):
            raise ModelError(f"{path}: {k} holds {arr.size} values for shape {want[k]}.", _FIX)
        out[k] = arr.reshape(want[k])
    del data
    return out


META_KEY = "ravas.mimi_config"


def config_of(path: Path) -> arch.MimiConfig:
    """The configuration a checkpoint declares in its ``__metadata__`` (checkpoints RAVAS writes for
    tests and benchmarks); Kyutai's declares none: the published configuration."""
    header, _ = _header(Path(path))
    meta = (header.get("__metadata__") or {}).get(META_KEY)
    if not meta:
        return arch.FULL
    try:
        return arch.MimiConfig.from_dict(json.loads(meta))
    except (ValueError, TypeError, KeyError):
        raise ModelError(f"{path}: its {META_KEY} metadata is not a Mimi configuration.", _FIX) from None


def write_safetensors(
    path: Path, params: dict[str, np.ndarray], dtype: str = "BF16", cfg: arch.MimiConfig | None = None
) -> None:
    """Write ``params`` as safetensors (tests and benchmarks: a checkpoint laid out like Kyutai's,
    random weights; ``cfg`` other than the published one is declared in the metadata)."""
    header, blobs, off = {}, [], 0
    if cfg is not None and cfg != arch.FULL:
        header["__metadata__"] = {META_KEY: json.dumps(cfg.to_dict())}
    for k, v in params.items():
        v = np.ascontiguousarray(v, np.float32)
        raw = (v.view(np.uint32) >> 16).astype(np.uint16).tobytes() if dtype == "BF16" else v.tobytes()
        header[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for b in blobs:
            fh.write(b)
