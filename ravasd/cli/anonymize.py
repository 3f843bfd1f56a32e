"""``ravasd anonymize``: recorded files through the live converters (one file, or a batch)."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from ..errors import MediaError, RavasError
from .common import common_config_args, load


def register(sub) -> None:
    """``ravasd anonymize``: its arguments (and sub-commands)."""
    an = sub.add_parser(
        "anonymize",
        help="anonymize recorded video/audio files (one, or whole corpora)",
        description="Run recorded files through the live converters on a simulated clock. "
        "One file: INPUT -o OUTPUT (video in (avi/mp4/mkv/mov…) → .mp4/.mkv/.mov; audio in "
        "(wav/flac/mp3…) → .wav/.flac). A batch: files, folders (recursive) and globs -o OUTDIR: "
        "the input tree is mirrored, --jobs files run at once (or as Ray tasks), and "
        "OUTDIR/manifest.jsonl makes a re-run resume (done files skipped, failed ones retried). "
        "Exit status 0 only when every file succeeded.",
    )
    an.add_argument(
        "media_in",
        type=str,
        nargs="+",
        metavar="INPUT",
        help="recorded video or audio files, folders of them, or globs ('data/**/*.mp4')",
    )
    an.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUTPUT",
        help="the output file (one input file) or folder (a batch)",
    )
    an.add_argument("--no-progress", action="store_true", help="no progress bar")
    an.add_argument("--force", action="store_true", help="one file: overwrite OUTPUT if it exists")
    an.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="batch: files at once (default: the CPU cores; each job single-threaded); "
        "with --engine ray: the CPUs of a local Ray instance",
    )
    an.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="batch: worker processes on this machine, or Ray tasks (the cluster extra)",
    )
    an.add_argument(
        "--address",
        metavar="ADDR",
        help="--engine ray: a running Ray cluster (default: RAY_ADDRESS, else a local instance)",
    )
    an.add_argument("--eval", action="store_true", help="batch: write the evaluation report (eval report) after")
    an.add_argument(
        "--allow-truncated",
        action="store_true",
        help="anonymize what decodes of an input that is truncated or damaged (decoding errors, or "
        "shorter than its header states) instead of failing it; a batch's manifest records it",
    )
    common_config_args(an)


def _is_media_file(path: Path) -> bool:
    """An output named like one media file (what ``MediaWriter`` writes), not a folder."""
    from ..media.formats import AUDIO_OUT, VIDEO_OUT

    return path.suffix.lower() in VIDEO_OUT.keys() | AUDIO_OUT.keys() and not path.is_dir()


def run(args: argparse.Namespace) -> int:
    from ..research.anonymize import anonymize

    cfg = load(args)
    one = args.media_in[0]
    single = (
        len(args.media_in) == 1 and not glob.has_magic(one) and not Path(one).is_dir() and _is_media_file(args.output)
    )
    if args.jobs is not None and args.jobs < 1:
        raise RavasError(f"--jobs {args.jobs}: must be at least 1.")
    if not single:
        return _anonymize_batch(args, cfg)
    if args.output.exists() and not args.force:
        raise MediaError(f"Output {args.output} already exists.", "choose another name or pass --force.")
    res = anonymize(
        args.media_in[0],
        args.output,
        cfg,
        progress=not args.no_progress and sys.stderr.isatty(),
        allow_truncated=args.allow_truncated,
    )
    note = (
        f", {res.placeholders} placeholder items after {res.converter_errors} converter errors"
        if res.converter_errors
        else ""
    )
    note += f"; the input is truncated or damaged ({res.truncated}): only what decodes" if res.truncated else ""
    print(f"wrote {res.output}: {res.frames} frames, {res.audio_seconds:.2f} s audio{note}")
    return 0


def _anonymize_batch(args: argparse.Namespace, cfg) -> int:
    from ..research.batch import run_batch

    if _is_media_file(args.output):
        raise RavasError(
            f"Output {args.output} looks like a file, but a batch writes into a folder.",
            "name a folder for -o (it is created), or anonymize one file at a time.",
        )
    res = run_batch(
        args.media_in,
        args.output,
        cfg,
        jobs=args.jobs,
        engine=args.engine,
        address=args.address,
        progress=not args.no_progress and sys.stderr.isatty(),
        allow_truncated=args.allow_truncated,
        log=lambda line: print(line, flush=True),
    )
    print(res.summary())
    if args.eval:
        from ..evaluation.report import write_report  # the eval extra

        paths = write_report(args.output, cfg, progress=not args.no_progress and sys.stderr.isatty())
        print("report: " + ", ".join(str(p) for p in paths))
    return 0 if res.ok else 1
