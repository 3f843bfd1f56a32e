"""``ravasd eval call``: utterances through the daemon and a real call client, scored at the far end.

For each voice a daemon (``ravasd run --no-video``, its own RAVAS_HOME) hears the utterances from
a fake microphone on a private PulseAudio server; headless Chromium picks "RAVAS Mic" by its label,
sends it through a WebRTC loopback call (Opus, the browser's default processing) and records the far
end. The original speech takes the same call path from the fake microphone itself (label
"RAVAS eval feed"), so the path's own cost is measured. Each utterance is cut from the far end at
its played time plus the measured delay, then transcribed (Whisper tiny) and scored for naturalness
(DNSMOS), beside the same utterance converted offline exactly as the daemon streams it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soxr

from ..bench.audio import SoundServer, lag_ms
from ..config import Config
from ..errors import RavasError
from ..evaluation import voice as ev
from ..evaluation.callclient import Call, FarEnd
from ..media.writer import MediaWriter

RATE = 48000
LEAD_S, GAP_S = 1.5, 1.0  # silence before the first utterance and after each
FEED_LABEL = "RAVAS eval feed"  # the fake microphone's description: the original's call
BOOT = 1000


@dataclass
class Row:
    """One voice (or ``original``) at the far end and offline, over the same utterances."""

    voice: str
    utterances: int
    wer_call: float | None = None
    wer_call_interval: tuple[float, float] | None = None
    wer_offline: float | None = None
    wer_offline_interval: tuple[float, float] | None = None
    dnsmos_ovrl_call: float | None = None
    dnsmos_ovrl_offline: float | None = None
    delay_ms: float | None = None
    items: list[dict] = field(default_factory=list)
    unavailable: str | None = None  # why this row could not be measured
    #: per speaker family (when the utterances' families are known): {family: {"utterances",
    #: "wer_call", "wer_offline", "dnsmos_ovrl_call"}}
    families: dict[str, dict] = field(default_factory=dict)


def _ratio_ci(pairs: list[tuple[int, int]], rng) -> tuple[float, tuple[float, float]]:
    a = np.array(pairs, float)
    value = float(a[:, 0].sum() / max(1.0, a[:, 1].sum()))
    draws = []
    for _ in range(BOOT):
        idx = rng.integers(0, len(a), len(a))
        draws.append(a[idx, 0].sum() / max(1.0, a[idx, 1].sum()))
    return value, (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


def _program(utts: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The fake microphone's whole signal at RATE, and each utterance's (start, end) in it (s)."""
    parts, spans, t = [np.zeros(int(LEAD_S * RATE), np.float32)], [], LEAD_S
    for x in utts:
        y = soxr.resample(x, ev.RATE, RATE).astype(np.float32)
        parts += [y, np.zeros(int(GAP_S * RATE), np.float32)]
        spans.append((t, t + len(y) / RATE))
        t += len(y) / RATE + GAP_S
    return np.concatenate(parts), spans


def _ctl(env: dict, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ravasd", "ctl", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _audio_running(env: dict) -> bool:
    r = _ctl(env, "status", "--json")
    return r.returncode == 0 and ((json.loads(r.stdout).get("audio") or {}).get("state") == "running")


def _take(env: dict, wav: Path, seconds: float, label: str, voice: str | None, log) -> tuple[FarEnd, float]:
    """Play ``wav`` into the fake microphone during a call from ``label``; with ``voice``, a daemon
    converts it first. Returns the far end and the epoch time playback started."""
    daemon = None
    try:
        if voice is not None:
            daemon = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ravasd",
                    "run",
                    "--no-tray",
                    "--no-video",
                    "--mic",
                    "ravas_eval_mic",
                    "--voice",
                    voice,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            ready_by = time.monotonic() + 120
            while not _audio_running(env):
                if daemon.poll() is not None or time.monotonic() > ready_by:
                    raise RavasError(
                        f"eval call: the daemon did not start with voice {voice!r}: "
                        f"{(daemon.stderr.read() if daemon.poll() is not None else 'timed out')[-600:]}",
                        "run `ravasd doctor`, or try the voice with `ravasd run --voice NAME`.",
                    )
                time.sleep(0.3)
            time.sleep(1.0)
        call = Call(env, seconds + 2.0, label)
        call.start()
        log(f"  call up ({voice or 'original'}), playing {seconds:.0f} s")
        t_play = time.time()
        subprocess.run(
            ["paplay", "--device=ravas_eval_feed", "--latency-msec=20", str(wav)],
            env=env,
            check=True,
            timeout=seconds + 60,
        )
        far = call.finish()
        return far, t_play
    finally:
        if daemon is not None:
            _ctl(env, "quit")
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()


def _per_family(row_items: list[dict], call_pairs, off_pairs, mos_call, family_of: dict[str, str]) -> dict:
    out: dict[str, dict] = {}
    for it, c, o, m in zip(row_items, call_pairs, off_pairs, mos_call):
        fam = family_of.get(it["speaker"])
        if fam is None:
            continue
        f = out.setdefault(fam, {"utterances": 0, "call": [0, 0], "off": [0, 0], "mos": []})
        f["utterances"] += 1
        f["call"] = [f["call"][0] + c[0], f["call"][1] + c[1]]
        f["off"] = [f["off"][0] + o[0], f["off"][1] + o[1]]
        f["mos"].append(m)
    return {
        fam: {
            "utterances": f["utterances"],
            "wer_call": f["call"][0] / max(1, f["call"][1]),
            "wer_offline": f["off"][0] / max(1, f["off"][1]),
            "dnsmos_ovrl_call": float(np.mean(f["mos"])),
        }
        for fam, f in out.items()
    }


#: How far (s) an utterance may sit from where the program's single delay puts it. Below GAP_S / 2,
#: so a neighbour's speech never wins.
SEARCH_S = 0.45


def _refine(far: FarEnd, start: float, length: float, ref: np.ndarray) -> float:
    """The shift (s, within ±SEARCH_S) that lines ``ref`` (the utterance as the voice makes it
    offline, 16 kHz) up with the far end around ``start`` (s). The program's one delay is measured
    over all of it, and a voice whose pauses are not silent (or a jitter buffer that grew) can put it
    hundreds of ms off, cutting each utterance's first words (measured: 476 and 679 ms for a voice
    whose utterances sat ≈ 200 ms in); each utterance is aligned on its own sound instead."""
    lo = max(0, int((start - SEARCH_S) * far.rate))
    near = far.samples[lo : int((start + length + SEARCH_S) * far.rate)]
    if len(near) < far.rate * 0.2 or not np.any(ref) or np.abs(near).max() < 1e-4:  # nothing to find
        return 0.0
    pad = np.zeros(int(SEARCH_S * far.rate), np.float32)  # silence around it: its on/off has both
    ref48 = np.concatenate([pad, soxr.resample(ref, ev.RATE, far.rate).astype(np.float32), pad])
    found = lo / far.rate + lag_ms(ref48, near, far.rate) / 1000 + SEARCH_S  # where its sound starts (s)
    return float(np.clip(found - start, -SEARCH_S, SEARCH_S))


def _score(cfg: Config, voice: str | None, items: list, audio: list, spans: list, far: FarEnd, offs: float, rec):
    """Each utterance cut from the far end (``offs``: where the program starts there, s) and the same
    utterance converted offline: transcripts, (errors, words) pairs and DNSMOS of both.
    Returns (per-utterance records, call WER pairs, offline WER pairs, call DNSMOS, offline DNSMOS,
    each utterance's shift from ``offs`` in s)."""
    row_items, call_pairs, off_pairs, mos_call, mos_off, shifts = [], [], [], [], [], []
    for (path, spk, text), x, (a, b) in zip(items, audio, spans):
        off = x if voice is None else ev.convert(cfg, voice, x)
        shifts.append(_refine(far, offs + a, b - a, off))
        t0 = offs + a + shifts[-1]
        seg = far.samples[max(0, int((t0 - 0.1) * far.rate)) : int((t0 + b - a + 0.3) * far.rate)]
        seg16 = soxr.resample(seg, far.rate, ev.RATE).astype(np.float32) if len(seg) else np.zeros(1600, np.float32)
        hyp_call, hyp_off = rec(seg16), rec(off)
        call_pairs.append(ev.wer(text, hyp_call))
        off_pairs.append(ev.wer(text, hyp_off))
        m_call, m_off = ev.dnsmos(seg16)["ovrl"], ev.dnsmos(off)["ovrl"]
        mos_call.append(m_call)
        mos_off.append(m_off)
        row_items.append(
            {
                "file": str(path),
                "speaker": spk,
                "text": text,
                "hyp_call": hyp_call,
                "hyp_offline": hyp_off,
                "shift_ms": round(1000 * shifts[-1], 1),
                "dnsmos_ovrl_call": m_call,
                "dnsmos_ovrl_offline": m_off,
            }
        )
    return row_items, call_pairs, off_pairs, mos_call, mos_off, shifts


def eval_call(
    cfg: Config,
    inputs: list[Path],
    voices: list[str],
    limit: int | None = None,
    recogniser: str = "whisper",
    log=print,
    family_of: dict[str, str] | None = None,
) -> list[Row]:
    """Rows for the original and each voice over the first ``limit`` utterances of ``inputs``;
    ``family_of`` (speaker → family) adds the per-family figures."""
    items = [it for it in ev.collect(inputs) if it[2]][:limit]
    if not items:
        raise RavasError("eval call: no utterance has a transcript.", "put <same name>.txt beside each .wav.")
    audio = [ev.load(p) for p, _, _ in items]
    rec = ev.make_recogniser(recogniser)
    program, spans = _program(audio)
    seconds = len(program) / RATE
    srv = SoundServer(private=True)
    rows = []
    try:
        srv.load("module-null-sink", "sink_name=ravas_eval_feed", f"rate={RATE}", "channels=1")
        srv.load(
            "module-remap-source",
            "source_name=ravas_eval_mic",
            "master=ravas_eval_feed.monitor",
            "channels=1",
            f"source_properties=\"device.description='{FEED_LABEL}'\"",
        )
        with tempfile.TemporaryDirectory(prefix="ravas-eval-call-") as tmp:
            wav = Path(tmp) / "program.wav"
            w = MediaWriter(wav, audio_rate=RATE)
            w.write_samples(program)
            w.commit()
            env = dict(srv.env, RAVAS_HOME=str(Path(tmp) / "home"), OPENBLAS_NUM_THREADS="1")
            rng = np.random.default_rng(0)
            for voice in [None, *voices]:
                name = voice or "original"
                log(f"eval call: {name}")
                try:
                    far, t_play = _take(env, wav, seconds, "RAVAS Mic" if voice else FEED_LABEL, voice, log)
                except RavasError as err:
                    if voice is not None:
                        raise
                    # the original's call is the reference, not the product: report, go on with the voices
                    rows.append(Row(name, len(items), unavailable=str(err)))
                    log(f"  the original's call could not be made: {err}")
                    continue
                start = t_play - far.t0  # where the program begins in the far end's recording (s)
                heard = far.samples[max(0, int(start * far.rate)) :]
                delay = lag_ms(program, heard[: len(program)], RATE) if len(heard) > RATE else float("nan")
                offs = start + max(0.0, delay) / 1000
                row_items, call_pairs, off_pairs, mos_call, mos_off, shifts = _score(
                    cfg, voice, items, audio, spans, far, offs, rec
                )
                delay += 1000 * float(np.median(shifts))  # where the utterances were found
                wc, wci = _ratio_ci(call_pairs, rng)
                wo, woi = _ratio_ci(off_pairs, rng)
                rows.append(
                    Row(
                        name,
                        len(items),
                        wc,
                        wci,
                        wo,
                        woi,
                        float(np.mean(mos_call)),
                        float(np.mean(mos_off)),
                        round(delay, 1),
                        row_items,
                        families=_per_family(row_items, call_pairs, off_pairs, mos_call, family_of or {}),
                    )
                )
                log(f"  WER at the far end {wc:.1%}, offline {wo:.1%}")
    finally:
        srv.close()
    return rows


def format_table(rows: list[Row]) -> str:
    out = [
        "| voice | utterances | WER at the far end | WER offline | DNSMOS OVRL far end / offline | delay |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.unavailable:
            out.append(f"| `{r.voice}` | {r.utterances} | unavailable: {r.unavailable} | | | |")
            continue
        out.append(
            f"| `{r.voice}` | {r.utterances} | {r.wer_call:.1%} [{r.wer_call_interval[0]:.1%}–"
            f"{r.wer_call_interval[1]:.1%}] | {r.wer_offline:.1%} [{r.wer_offline_interval[0]:.1%}–"
            f"{r.wer_offline_interval[1]:.1%}] | {r.dnsmos_ovrl_call:.2f} / {r.dnsmos_ovrl_offline:.2f} | "
            f"{r.delay_ms:.0f} ms |"
        )
    fams = list(dict.fromkeys(f for r in rows for f in r.families))
    if fams:
        out += [
            "",
            "| voice | " + " | ".join(f"{f}: far end / offline WER, DNSMOS far end" for f in fams) + " |",
            "|---|" + "---|" * len(fams),
        ]
        for r in rows:
            cells = [
                (
                    f"{r.families[f]['wer_call']:.1%} / {r.families[f]['wer_offline']:.1%}, "
                    f"{r.families[f]['dnsmos_ovrl_call']:.2f}"
                )
                if f in r.families
                else "–"
                for f in fams
            ]
            out.append(f"| `{r.voice}` | " + " | ".join(cells) + " |")
    return "\n".join(out)


def to_json(rows: list[Row], details: bool = False) -> str:
    return json.dumps([{k: v for k, v in asdict(r).items() if details or k != "items"} for r in rows], indent=1)
