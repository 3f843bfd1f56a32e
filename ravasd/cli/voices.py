"""``ravasd voices``: list, build, import and remove voices."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import config_args, load, table


def register(sub) -> None:
    """``ravasd voices``: its arguments (and sub-commands)."""
    voices = sub.add_parser("voices", help="list voice converters")
    vsub = voices.add_subparsers(dest="voices_command", metavar="ACTION", required=True)
    vl = vsub.add_parser("list", help="list the voices (neural ones too, with what they need)")
    vl.add_argument("--json", action="store_true")
    config_args(vl)
    vb = vsub.add_parser("build", help="make a neural voice from a consenting target speaker's recordings")
    vb.add_argument("name", metavar="NAME", help="the new voice's name (audio.voice)")
    vb.add_argument(
        "--from",
        dest="src",
        required=True,
        metavar="DIR",
        help="folder (searched recursively) or file of recordings: wav, flac, mp3, ogg, opus, m4a",
    )
    vb.add_argument(
        "--method",
        choices=("mimi", "knnvc"),
        default="mimi",
        help="Mimi-VC (default; needs `models fetch mimi`) or kNN-VC (needs `models add knnvc`)",
    )
    vb.add_argument("--force", action="store_true", help="replace a voice of that name")
    config_args(vb)
    vi = vsub.add_parser("import", help="take a RAVAS target file (torch.save of an (N, D) tensor; no torch needed)")
    vi.add_argument("file", metavar="FILE.pt")
    vi.add_argument("--name", help="voice name (default: the file's name)")
    vi.add_argument(
        "--method", choices=("mimi", "knnvc"), help="default: from the vectors' size (512 mimi, 1024 knnvc)"
    )
    vi.add_argument("--force", action="store_true", help="replace a voice of that name")
    config_args(vi)
    vr = vsub.add_parser("remove", help="delete a neural voice you built or imported")
    vr.add_argument("name", metavar="NAME")
    vs = vsub.add_parser(
        "sample",
        help="a sentence (spoken by flite or espeak-ng) through a voice, as the daemon streams it, to a .wav",
    )
    vs.add_argument("name", metavar="NAME")
    vs.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.wav")
    config_args(vs)


def run(args: argparse.Namespace) -> int:
    from ..audio.neural import manage as neural
    from ..audio.neural.registry import nominal_latency_ms
    from ..audio.voices import VOICES, figures, latency_ms
    from ..audio.voices import neural as neural_voices

    if args.voices_command == "remove":
        print(neural.remove(args.name))
        return 0
    cfg = load(args)
    if args.voices_command == "sample":
        return _sample(cfg, args.name, args.output)
    if args.voices_command == "build":
        print(neural.build(cfg, args.name, Path(args.src), args.method, args.force))
        return 0
    if args.voices_command == "import":
        print(neural.import_pt(cfg, Path(args.file), args.name, args.method, args.force))
        return 0
    measured = figures.load()
    rows = []
    for v in VOICES.values():  # the latency the daemon adds at the configured rate and block size
        f = figures.summary(v.name, measured)
        rows.append(
            {
                "name": v.name,
                "method": v.method,
                "latency_ms": round(latency_ms(cfg, v.name), 1),
                "wer_plus": f["wer_increase_points"],
                "lazy_eer_%": f["eer_lazy_informed"],
                "description": v.description,
            }
        )
    for v in neural_voices(cfg).values():  # latency from the architecture: loading a model here is too slow
        rows.append(
            {
                "name": v.name,
                "method": v.method + ("" if v.available else " (unavailable)"),
                "latency_ms": nominal_latency_ms(cfg, v.method),
                "wer_plus": None,
                "lazy_eer_%": None,
                "description": v.description
                + (
                    ". Live, the daemon adds the compute margin it measures when "
                    "the voice loads (see `ravasd bench audio`)"
                    if v.available
                    else f". To use it: {v.fix}"
                ),
            }
        )
    table(rows, args.json)
    return 0


def _sample(cfg, name: str, out: Path) -> int:
    from ..errors import RavasError
    from ..evaluation.sample import SAMPLE_TEXT, voice_sample
    from ..media.writer import MediaWriter

    if out.suffix.lower() != ".wav":
        raise RavasError(f"{out}: a voice sample is a WAV file.", "name the file *.wav.")
    x = voice_sample(name, cfg.audio.sample_rate, cfg)
    w = MediaWriter(out, audio_rate=cfg.audio.sample_rate)
    w.write_samples(x)
    w.commit()
    print(f"wrote {out} ({len(x) / cfg.audio.sample_rate:.1f} s: {SAMPLE_TEXT!r} through {name})")
    return 0
