"""Installing Mimi: checkpoint → validated weights → ONNX graphs → streamed == offline check →
default voices → the model folder, renamed into place only when all of that worked.

Who calls: ``ravasd models fetch mimi`` / ``models add mimi FILE`` (the CLI), ``bench audio
--random-weights``. Needs torch (the ``torch`` extra) for the export step only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ... import model_files, paths
from ...errors import ModelError
from . import checkpoint, pools, speech
from . import mimi_arch as arch
from .mimi import FORMAT, MimiModel
from .runtime import all_cores


def mimi_dir(configured: str | None = None) -> Path:
    """Where the Mimi graphs live: ``models.mimi`` or ``<cache>/models/mimi``."""
    return Path(configured).expanduser() if configured else paths.cache_dir() / "models" / "mimi"


def random_dir(precision: str = "float32") -> Path:
    """The random-weights Mimi ``bench --random-weights`` makes (never used as a voice)."""
    return paths.cache_dir() / "models" / f"mimi-random-{precision}"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def test_signal(rate: int = 24000, seconds: float = 2.0) -> np.ndarray:
    """A voiced, gliding test sound with a little noise (deterministic)."""
    t = np.arange(int(rate * seconds)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    ph = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(h * ph) / h for h in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    x += np.random.default_rng(7).normal(0, 0.01, len(t))
    return (0.2 * x / np.max(np.abs(x))).astype(np.float32)


def check_streaming(folder: Path, tolerance: float = 1e-3) -> float:
    """Run the graphs on :func:`test_signal` offline (one call) and streamed (one frame, then three,
    then the rest); raise unless they agree within ``tolerance`` (relative to the signal's peak).
    Returns the worst relative difference."""
    m = MimiModel(folder, threads=all_cores())
    x = test_signal(m.cfg.sample_rate)
    n = len(x) // m.frame
    x = x[: n * m.frame]
    z_off = m.latents(x)
    y_off = m.decode(z_off)
    m.reset()
    cuts = [0, 1, 4, 7, 2 * n]  # in hops: half a frame, then odd pieces
    zs = np.concatenate([m.encode(x[a * m.hop : b * m.hop]) for a, b in zip(cuts, cuts[1:])])
    cuts = [0, 1, 3, n]
    ys = np.concatenate([m.decode(zs[a:b]) for a, b in zip(cuts, cuts[1:])])
    worst = max(
        float(np.abs(zs - z_off).max() / (np.abs(z_off).max() + 1e-6)),
        float(np.abs(ys - y_off).max() / (np.abs(y_off).max() + 1e-6)),
    )
    if not np.isfinite(worst) or worst > tolerance:
        raise ModelError(
            f"The exported Mimi graphs in {folder} stream differently from their offline run "
            f"(relative difference {worst:.2g}).",
            "report this as a bug with `ravasd doctor` output; the voice is not enabled.",
        )
    return worst


def install_mimi(
    ckpt: Path,
    dest: Path | None = None,
    *,
    default_voices: bool = True,
    source_note: str = "",
    random: bool = False,
    precision: str = "float32",
) -> Path:
    """Validate ``ckpt``, export, check, build the default voices; return the installed folder.

    Everything is made in ``.mimi.staging`` next to ``dest`` and renamed into place at the end, so
    a failure at any step leaves the previous install (or none) exactly as it was."""
    ckpt = Path(ckpt)
    dest = dest or mimi_dir()
    _say(f"Checking {ckpt} …")
    params = checkpoint.read_mimi(ckpt, cfg := checkpoint.config_of(ckpt))
    digest = model_files.sha256(ckpt)
    stage = dest.with_name(f".{dest.name}.staging")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        _say(f"Exporting the Mimi graphs ({sum(v.size for v in params.values()) / 1e6:.1f} M parameters) …")
        from .export import export

        export(
            params,
            cfg,
            stage,
            {
                "file": ckpt.name,
                "sha256": digest,
                "licence": model_files.MIMI.licence,
                "note": source_note,
                "random": random,
                "made": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            precision,
        )
        del params
        worst = check_streaming(stage, 1e-3 if precision == "float32" else 5e-2)
        _say(f"Streamed output matches the offline run (worst relative difference {worst:.1e}).")
        built = []
        if default_voices:
            model = MimiModel(stage, threads=all_cores())
            for name, (_spk, desc) in speech.SPEAKERS.items():
                _say(f"Building the voice mimi-{name} from the shipped {desc} …")
                audio = speech.load(name, model.cfg.sample_rate)
                built.append((f"mimi-{name}", model.latents(audio), name, desc))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    paths.replace_dir(stage, dest)
    for name, latents, spk, desc in built:
        pools.save(
            name,
            latents,
            {
                "method": "mimi",
                "description": f"Mimi-VC towards {desc} (shipped target speech)",
                "inputs": [
                    {
                        "file": f"ravasd:{speech.file_name(spk)}",
                        "sha256": speech.sha256(spk),
                        "seconds": round(len(latents) * cfg.frame / cfg.sample_rate, 2),
                    }
                ],
                "model_sha256": digest,
                "built_in": True,
            },
            force=True,
        )
    _say(f"Mimi installed in {dest}" + (f"; voices: {', '.join(b[0] for b in built)}" if built else ""))
    return dest


def make_random(
    dest: Path | None = None, cfg: arch.MimiConfig = arch.FULL, seed: int = 0, precision: str = "float32"
) -> Path:
    """A Mimi of the published architecture with random weights (benchmarks), made once and reused."""
    dest = dest or random_dir(precision)
    man = dest / "manifest.json"
    if man.is_file():
        m = json.loads(man.read_text())
        if m.get("config") == cfg.to_dict() and m.get("format") == FORMAT and m.get("precision") == precision:
            return dest
    tmp = paths.cache_dir() / "models" / ".mimi-random.safetensors"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_safetensors(tmp, arch.random_params(cfg, seed), "F32", cfg)
    try:
        return install_mimi(
            tmp, dest, default_voices=False, source_note="random weights", random=True, precision=precision
        )
    finally:
        tmp.unlink(missing_ok=True)


def content_id(folder: Path) -> str:
    """A short id of an installed model (its checkpoint's digest), stored in pools built with it."""
    src = json.loads((folder / "manifest.json").read_text()).get("source", {})
    return src.get("sha256") or hashlib.sha256(str(folder).encode()).hexdigest()
