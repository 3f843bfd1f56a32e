"""``ravasd models fetch/add mimi|knnvc`` and ``ravasd voices build/import/remove``: the neural voices'
weights and target pools. Progress and announcements go to stderr; results to stdout."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ... import model_files
from ...config import Config
from ...errors import ConfigError, MediaError, ModelError
from ...media.formats import AUDIO_IN


def fetch_mimi(cfg: Config, precision: str = "float32") -> Path:
    from .export import need_tools
    from .install import install_mimi, mimi_dir

    need_tools()  # before a 385 MB download that could not be used
    if not cfg.models.allow_download:
        raise ModelError(
            "Downloads are switched off (models.allow_download).",
            f"download {model_files.MIMI.url} yourself and run `ravasd models add mimi FILE`, or set "
            "models.allow_download true.",
        )
    ckpt = model_files.find(model_files.MIMI) or model_files.fetch(model_files.MIMI, progress=sys.stderr.isatty())
    return install_mimi(
        ckpt, mimi_dir(cfg.models.mimi), source_note=f"fetched from {model_files.MIMI.url}", precision=precision
    )


def add_mimi(cfg: Config, file: Path, precision: str = "float32") -> Path:
    from . import checkpoint
    from .export import need_tools
    from .install import install_mimi, mimi_dir

    file = Path(file).expanduser()
    checkpoint.read_mimi(file, checkpoint.config_of(file))  # a clear error before torch is even asked for
    recorded = model_files.cache_path(model_files.MIMI).with_name(model_files.MIMI.name + ".sha256")
    if recorded.is_file() and model_files.sha256(file) != recorded.read_text().strip():
        print(
            f"Note: {file} differs from the copy fetched earlier (sha256 recorded in {recorded}); "
            "installing it anyway, as you asked.",
            file=sys.stderr,
        )
    need_tools()
    return install_mimi(file, mimi_dir(cfg.models.mimi), source_note=f"added by hand from {file}", precision=precision)


def add_knnvc(cfg: Config, folder: Path) -> str:
    from . import knnvc

    dest, sizes = knnvc.add(folder, knnvc.knnvc_dir(cfg.models.knnvc))
    return f"kNN-VC graphs for chunks of {', '.join(map(str, sizes))} samples in {dest}"


def model_rows(cfg: Config) -> list[str]:
    """What ``models list`` prints for the neural models."""
    from . import knnvc
    from .install import mimi_dir
    from .runtime import load_manifest

    out = []
    folder = mimi_dir(cfg.models.mimi)
    if (folder / "manifest.json").is_file():
        src = load_manifest(folder).get("source", {})
        out.append(f"mimi: {folder} (from {src.get('file')}, sha256 {str(src.get('sha256'))[:12]}…)")
    else:
        out.append("mimi: not installed (`ravasd models fetch mimi`, or `ravasd models add mimi FILE`)")
    kf = knnvc.knnvc_dir(cfg.models.knnvc)
    sizes = sorted(int(p.stem.split("_")[1]) for p in kf.glob("wavlm_*.onnx")) if kf.is_dir() else []
    out.append(
        f"knnvc: {kf} (chunks {', '.join(map(str, sizes))})"
        if sizes
        else "knnvc: not installed (`ravasd models add knnvc DIR` with RAVAS's ONNX files)"
    )
    return out


# --- voices ----------------------------------------------------------------------------------------


def _recordings(src: Path) -> list[Path]:
    src = Path(src).expanduser()
    if src.is_file():
        files = [src]
    elif src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO_IN and p.is_file())
    else:
        raise MediaError(
            f"--from {src}: no such file or folder.",
            "pass the folder with the target speaker's recordings (wav, flac, mp3).",
        )
    if not files:
        raise MediaError(
            f"--from {src}: no recordings found (looked for {', '.join(sorted(AUDIO_IN))}).",
            "pass the folder with the target speaker's recordings.",
        )
    return files


def _read(path: Path, rate: int) -> np.ndarray:
    from ...engine.frames import RawAudio
    from ...media.reader import iter_media

    parts = [c.samples for c in iter_media(path, rate, video=False) if isinstance(c, RawAudio)]
    if not parts:
        raise MediaError(f"{path} has no audio stream.", "remove it from the folder or convert it to WAV.")
    return np.concatenate(parts).astype(np.float32)


def _model_for(cfg: Config, method: str):
    """(features function, its rate, frames per second, model digest) for ``method``."""
    from .runtime import all_cores

    threads = all_cores()
    if method == "mimi":
        from .install import content_id, mimi_dir
        from .mimi import MimiModel
        from .registry import FETCH_FIX

        folder = mimi_dir(cfg.models.mimi)
        if not (folder / "manifest.json").is_file():
            raise ModelError("Mimi is not installed, and a Mimi-VC voice is made of Mimi latents.", FETCH_FIX + ".")
        m = MimiModel(folder, cfg.audio.device, threads)
        return m.latents, m.cfg.sample_rate, m.cfg.sample_rate / m.frame, content_id(folder), m.cfg.dimension
    from . import knnvc

    folder = knnvc.knnvc_dir(cfg.models.knnvc)
    m = knnvc.KnnVCModel(folder, cfg.audio.knnvc_chunk, cfg.audio.device, threads)
    return m.pool_features, 16000, 16000 / knnvc.FEATURE_HOP, f"knnvc:{cfg.audio.knnvc_chunk}", knnvc.DIM


def build(cfg: Config, name: str, src: Path, method: str, force: bool) -> str:
    from ..voices import VOICES
    from . import pools

    pools.check_name(name)
    if name in VOICES:
        raise ConfigError(f"{name!r} is a built-in voice's name.", "choose another name for the new voice.")
    if (pools.voices_dir() / name).exists() and not force:
        raise ConfigError(f"a voice named {name!r} exists already.", "choose another name, or pass --force.")
    feats_of, rate, fps, digest, dim = _model_for(cfg, method)  # first: the bigger missing piece
    files = _recordings(src)
    feats, inputs = [], []
    t0 = time.monotonic()
    for f in tqdm(files, desc=f"voice {name}", unit="file", disable=not sys.stderr.isatty(), file=sys.stderr):
        x = _read(f, rate)
        v = feats_of(x)
        if len(v):
            feats.append(v)
        inputs.append({"file": str(f), "sha256": model_files.sha256(f), "seconds": round(len(x) / rate, 2)})
    total = sum(i["seconds"] for i in inputs)
    if not feats or total < 3:
        raise MediaError(
            f"--from {src}: only {total:.1f} s of audio; a voice needs at least a few seconds "
            "(a few minutes sound best).",
            "add more recordings of the target speaker.",
        )
    pool = np.concatenate(feats)
    pools.save(
        name,
        pool,
        {
            "method": method,
            "description": f"{'Mimi-VC' if method == 'mimi' else 'kNN-VC'} "
            f"towards {name} ({total / 60:.1f} min of target speech)",
            "inputs": inputs,
            "seconds": round(total, 2),
            "model_sha256": digest,
            "made": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        force=force,
    )
    return (
        f"voice {name}: {len(pool)} {dim}-d frames ({fps:g}/s) from {len(files)} file(s), {total / 60:.1f} min, "
        f"built in {time.monotonic() - t0:.0f} s; use it with `ravasd config set audio.voice {name}`"
    )


def import_pt(cfg: Config, file: Path, name: str | None, method: str | None, force: bool) -> str:
    from . import pools

    file = Path(file).expanduser()
    vec = pools.read_torch_tensor(file)
    by_dim = {d: m for m, d in pools.METHODS.items()}
    method = method or by_dim.get(vec.shape[1])
    if method is None or pools.METHODS[method] != vec.shape[1]:
        raise ModelError(
            f"{file} holds {vec.shape[1]}-d vectors; Mimi-VC pools are 512-d, kNN-VC pools 1024-d.",
            "pass a RAVAS target file (target_feats/mimivc/<name>.pt or target_feats/<name>.pt).",
        )
    name = name or file.stem.lower()
    pools.check_name(name)
    if (pools.voices_dir() / name).exists() and not force:
        raise ConfigError(f"a voice named {name!r} exists already.", "pass --name NEW, or --force to replace it.")
    pools.save(
        name,
        vec,
        {
            "method": method,
            "description": f"{'Mimi-VC' if method == 'mimi' else 'kNN-VC'} towards {name} (imported from RAVAS)",
            "inputs": [{"file": str(file), "sha256": model_files.sha256(file)}],
            "imported": True,
            "made": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        force=force,
    )
    return f"voice {name}: {len(vec)} {vec.shape[1]}-d frames ({method}) imported from {file}"


def remove(name: str) -> str:
    from . import pools

    folder = pools.voices_dir() / name
    if not (folder / "voice.json").is_file():
        raise ConfigError(f"no neural voice named {name!r}.", "see `ravasd voices list`.")
    shutil.rmtree(folder)
    return f"removed the voice {name} ({folder})"
