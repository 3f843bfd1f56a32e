"""``ravasd bench``: benchmarks that print figures."""

from __future__ import annotations

import argparse
import os

from .common import config_args, load, seconds, table


def register(sub) -> None:
    """``ravasd bench``: its arguments (and sub-commands)."""
    be = sub.add_parser("bench", help="benchmarks that print figures (speed, CPU)")
    be_sub = be.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    bv = be_sub.add_parser("video", help="capture→track→filter→render→sink on a generated face clip")
    bv.add_argument("--width", type=int, default=1280)
    bv.add_argument("--height", type=int, default=720)
    bv.add_argument("--fps", type=int, help="target rate (default: video.fps)")
    bv.add_argument("--seconds", type=float, default=10.0)
    bv.add_argument("--json", action="store_true")
    config_args(bv)
    bb = be_sub.add_parser("batch", help="throughput of `anonymize` on a generated corpus, per job count")
    bb.add_argument(
        "--jobs",
        dest="bench_jobs",
        type=int,
        action="append",
        metavar="N",
        help="job counts to measure (repeatable; default 1 and the CPU count)",
    )
    bb.add_argument("--files", type=int, default=8)
    bb.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    bb.add_argument("--width", type=int, default=640)
    bb.add_argument("--height", type=int, default=480)
    bb.add_argument("--json", action="store_true")
    config_args(bb)
    ba = be_sub.add_parser("audio", help="per voice: real-time factor and end-to-end latency through PulseAudio")
    ba.add_argument(
        "--voice", dest="bench_voices", action="append", metavar="NAME", help="only this voice (repeatable)"
    )
    ba.add_argument("--no-e2e", action="store_true", help="skip the sound-server measurement")
    ba.add_argument(
        "--random-weights",
        action="store_true",
        help="neural voices whose weights are absent run on the published architecture with random "
        "weights (flagged in the output; made once in the cache, needs PyTorch to export)",
    )
    ba.add_argument(
        "--precision",
        choices=("float32", "int8"),
        default="float32",
        help="with --random-weights: the precision of the random Mimi's graphs",
    )
    ba.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="N",
        help="run N busy processes (saturating N cores) while measuring: audio must hold up",
    )
    ba.add_argument("--seconds", type=seconds, default=3.0, help="length of the e2e test signal (default 3)")
    ba.add_argument("--json", action="store_true")
    config_args(ba)


def run(args: argparse.Namespace) -> int:
    if args.bench_command == "batch":
        from ..bench.batch import bench_batch
        from ..bench.batch import to_json as batch_json

        rows = bench_batch(
            load(args),
            args.bench_jobs or sorted({1, os.cpu_count() or 1}),
            args.files,
            args.seconds,
            args.width,
            args.height,
        )
        print(batch_json(rows) if args.json else "")
        if not args.json:
            table(rows, False)
        return 0
    if args.bench_command == "audio":
        from ..bench.audio import bench_audio
        from ..bench.audio import to_json as audio_json

        rows = bench_audio(
            load(args),
            args.bench_voices,
            e2e=not args.no_e2e,
            load=args.load,
            seconds=args.seconds,
            random=args.random_weights,
            precision=args.precision,
        )
        if args.json:
            print(audio_json(rows))
        else:
            table([{k: _cell(v) for k, v in r.items()} for r in rows], False)
        return 0
    from ..bench.video import bench_video, format_table, to_json

    res = bench_video(load(args), args.width, args.height, args.seconds, args.fps)
    print(to_json(res) if args.json else format_table(res))
    return 0


def _cell(v) -> object:
    """A bench figure for a table cell: null, or a dict of parts as ``a 1.0 + b 2.0``."""
    if v is None:
        return "null"
    if isinstance(v, dict):
        return " + ".join(f"{k} {x}" for k, x in v.items() if k != "total") + (
            f" = {v['total']}" if "total" in v else ""
        )
    return v
