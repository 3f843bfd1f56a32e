"""``ravasd eval report OUTDIR``: what a batch of anonymized files hides and keeps, ready for a paper.

Reads ``OUTDIR/manifest.jsonl`` (written by ``ravasd anonymize IN... -o OUTDIR``) and measures, on
the batch's own outputs next to their inputs:

- **voice** (files whose names give speakers, ``<speaker>_<anything>``, ≥ 2 speakers × 2 files):
  EER for an ignorant and a lazy-informed attacker, identification accuracy, speaker similarity and
  word error rates (transcripts ``<input stem>.txt`` beside the inputs; Whisper by default) — the
  scorers and bootstrap intervals of ``ravasd eval voice`` — per speaker too; and the same EER on the *originals*, which shows the instrument can
  tell these speakers apart in the first place;
- **video**: per file, how much the output frames look like the input frames (sampled evenly;
  ``leaks.camera_likeness``: blurred, rescaled, cropped or colour-shifted camera pixels read above
  ``leaks.CAMERA_LIMIT``, an avatar well below; flagged above it);
- **durations and A/V sync**: input and output durations, the audio and video stream lengths and
  start times of each output.

Writes ``report.md``, ``report.html`` (the same, with the plots inline) and ``report-*.png``
(matplotlib; the ``eval`` extra) into OUTDIR, atomically.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from tqdm import tqdm

from ..config import Config
from ..errors import RavasError
from ..media.manifest import MANIFEST, read_manifest
from ..paths import atomic_write_text
from .leaks import CAMERA_LIMIT, camera_likeness
from .voice import BOOT, Evaluator, Item, Scorer, load, measures, speaker_of

LEAK_LIMIT = CAMERA_LIMIT  # above this, an output frame resembles its input frame
FRAMES = 12  # frames compared per video


@dataclass
class VideoCheck:
    file: str
    frames: int
    leak: float  # max camera_likeness of output vs input frames
    input_s: float
    video_s: float
    audio_s: float | None
    av_start_offset_ms: float | None  # audio stream start − video stream start

    @property
    def ok(self) -> bool:
        return self.leak < LEAK_LIMIT


@dataclass
class VoiceSummary:
    voice: str
    speakers: int
    utterances: int
    chance: float
    measures: dict[str, tuple[float | None, float | None, float | None]]  # value, lo, hi
    per_speaker: list[dict[str, Any]] = field(default_factory=list)
    recogniser: str = "whisper"


def _records(outdir: Path) -> list[dict[str, Any]]:
    if not (outdir / MANIFEST).exists():
        raise RavasError(
            f"{outdir} has no {MANIFEST}.", "anonymize a batch into it first: ravasd anonymize IN... -o OUTDIR."
        )
    return list(read_manifest(outdir).values())


# ------------------------------------------------------------------------------ video
def _frames(path: Path, picks: set[int]) -> dict[int, np.ndarray]:
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in picks:
                out[i] = f.to_ndarray(format="rgb24")
            if i >= max(picks):
                break
    return out


def _stream_info(path: Path) -> tuple[float, float | None, float | None, int]:
    """(video s, audio s or None, audio start − video start in ms or None, frames) of an output."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = v.frames or sum(1 for _ in c.demux(v))

        def length(s) -> float:
            return float(s.duration * s.time_base) if s.duration else float(c.duration or 0) / av.time_base

        def start(s) -> float:
            return float(s.start_time * s.time_base) if s.start_time is not None else 0.0

        return (length(v), length(a) if a else None, (start(a) - start(v)) * 1000 if a else None, frames)


def check_video(rec: dict[str, Any], outdir: Path) -> VideoCheck:
    out = outdir / rec["output"]
    video_s, audio_s, offset, n = _stream_info(out)
    picks = {int(i) for i in np.linspace(0, max(0, n - 1), min(FRAMES, max(1, n)))}
    a, b = _frames(Path(rec["input"]), picks), _frames(out, picks)
    # each output frame against its own input frame and its neighbours among the picks (a leak
    # delayed by A/V sync shows an earlier camera frame)
    keys = sorted(set(a) & set(b))
    leak = max(
        (camera_likeness(b[i], [a[j] for j in keys[max(0, k - 1) : k + 2]]) for k, i in enumerate(keys)), default=0.0
    )
    return VideoCheck(rec["output"], n, leak, float(rec.get("duration_s") or 0.0), video_s, audio_s, offset)


# ------------------------------------------------------------------------------ voice
def _items(records: list[dict[str, Any]], outdir: Path) -> list[Item]:
    items = []
    for rec in records:
        if rec.get("status") != "done" or not (rec.get("kind") == "audio" or rec.get("has_audio")):
            continue
        spk = speaker_of(rec["input"])
        if spk is None:
            continue
        txt = Path(rec["input"]).with_suffix(".txt")
        it = Item(Path(rec["input"]), spk, txt.read_text().strip() if txt.exists() else None, load(Path(rec["input"])))
        it.converted = load(outdir / rec["output"])
        items.append(it)
    return items


def score_voice(
    items: list[Item], cfg: Config, voice: str, progress: bool, recogniser: str = "whisper"
) -> VoiceSummary:
    ev = Evaluator(cfg, items, progress=progress, recogniser=recogniser)
    rep = ev.score(voice)
    sc = Scorer(items)
    per = []
    for name in sorted(set(sc.spk)):
        idx = np.array([i for i, s in enumerate(sc.spk) if s == name])
        per.append(
            {
                "speaker": name,
                "files": len(idx),
                "identified": sc.ident(sc.s_ign, idx),
                "identified_lazy": sc.ident(sc.s_lazy, idx),
                "similarity": float(sc.sim[idx].mean()),
                "wer_original": sc.word_error("orig", idx),
                "wer_converted": sc.word_error("conv", idx),
            }
        )
    m = {k: v for k, v in measures(items).items() if k in LABELS}
    return VoiceSummary(voice, rep.speakers, rep.utterances, rep.chance, m, per, rep.recogniser)


# ------------------------------------------------------------------------------ the report
LABELS = {
    "eer_original": "EER on the originals (instrument check)",
    "eer_ignorant": "EER, ignorant attacker",
    "eer_lazy_informed": "EER, lazy-informed attacker",
    "identification": "identification accuracy",
    "identification_lazy": "identification, lazy-informed",
    "wer_original": "WER, original",
    "wer_converted": "WER, converted",
}


def _pct(v: float | None) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{100 * v:.1f} %"


def _plots(outdir: Path, voice: VoiceSummary | None, videos: list[VideoCheck]) -> list[Path]:
    import matplotlib  # the eval extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name: str) -> None:
        path = outdir / name
        tmp = path.with_name(f".{path.name}.part.png")
        fig.tight_layout()
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        tmp.replace(path)
        made.append(path)

    if voice is not None:
        keys = list(LABELS)
        vals = [voice.measures[k] for k in keys]
        fig, ax = plt.subplots(figsize=(8, 3.6))
        y = [100 * (v[0] or 0) for v in vals]
        err = [
            [100 * ((v[0] or 0) - (v[1] if v[1] is not None else v[0] or 0)) for v in vals],
            [100 * ((v[2] if v[2] is not None else v[0] or 0) - (v[0] or 0)) for v in vals],
        ]
        ax.bar(range(len(keys)), y, yerr=err, capsize=3, color="#4c72b0")
        ax.axhline(100 * voice.chance, color="grey", ls="--", lw=1, label=f"chance ({100 * voice.chance:.1f} %)")
        ax.set_xticks(range(len(keys)), [LABELS[k] for k in keys], rotation=20, ha="right", fontsize=7)
        ax.set_ylabel("%")
        ax.set_title(f"voice '{voice.voice}': {voice.speakers} speakers, {voice.utterances} files (95 % intervals)")
        ax.legend(fontsize=7)
        save(fig, "report-voice.png")
    if videos:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        a1.hist([v.leak for v in videos], bins=20, range=(0, 1), color="#55a868")
        a1.axvline(LEAK_LIMIT, color="red", ls="--", lw=1, label="limit")
        a1.set_xlabel("max correlation output ↔ input frame")
        a1.set_ylabel("files")
        a1.legend(fontsize=7)
        a2.scatter([v.input_s for v in videos], [v.video_s for v in videos], s=12)
        hi = max([v.input_s for v in videos] + [1e-3])
        a2.plot([0, hi], [0, hi], color="grey", lw=1)
        a2.set_xlabel("input duration (s)")
        a2.set_ylabel("output video duration (s)")
        save(fig, "report-video.png")
    return made


def write_report(outdir: str | Path, cfg: Config, progress: bool = True, recogniser: str = "whisper") -> list[Path]:
    """Measure the batch in ``outdir`` and write the report files; returns their paths."""
    outdir = Path(outdir)
    records = _records(outdir)
    done = [r for r in records if r.get("status") == "done"]
    failed = [r for r in records if r.get("status") != "done"]
    voices = sorted({r.get("voice") for r in done if r.get("voice")})
    videos = [
        check_video(r, outdir)
        for r in tqdm(
            [r for r in done if r.get("kind") == "video"], desc="video checks", disable=not progress, leave=False
        )
    ]
    items = _items(done, outdir)
    per: dict[str, int] = {}
    for it in items:
        per[it.speaker] = per.get(it.speaker, 0) + 1
    voice = None
    voice_note = ""
    if len(per) >= 2 and min(per.values()) >= 2:
        voice = score_voice(items, cfg, voices[0] if len(voices) == 1 else ", ".join(voices), progress, recogniser)
    else:
        voice_note = (
            f"Voice measures need ≥ 2 speakers with ≥ 2 files each, named <speaker>_<anything>; this "
            f"batch has {per or 'none'}."
        )
    plots = _plots(outdir, voice, videos)
    md = _markdown(outdir, done, failed, voice, voice_note, videos, [p.name for p in plots])
    atomic_write_text(outdir / "report.md", md)
    atomic_write_text(outdir / "report.html", _html(md, outdir, plots))
    return [outdir / "report.md", outdir / "report.html", *plots]


def _markdown(
    outdir: Path, done, failed, voice: VoiceSummary | None, voice_note: str, videos: list[VideoCheck], plots: list[str]
) -> str:
    media = sum(float(r.get("duration_s") or 0) for r in done)
    wall = sum(float(r.get("wall_s") or 0) for r in done)
    lines = [
        f"# Anonymization report: {outdir.name}",
        "",
        f"{len(done)} files anonymized, {len(failed)} failed; {media / 3600:.3f} h of media, "
        f"{wall / 3600:.3f} h of job time ({media / wall:.2f} media-hours per job-hour)"
        if wall
        else f"{len(done)} files anonymized, {len(failed)} failed.",
        "",
        "Settings: "
        + ", ".join(
            sorted(
                {
                    f"voice `{r.get('voice')}`, video `{r.get('video_converter')}` "
                    f"(avatar `{r.get('avatar')}`), ravasd {r.get('ravasd_version')}"
                    for r in done
                }
            )
        ),
        "",
    ]
    lines += ["## Voice", ""]
    if voice is None:
        lines += [voice_note, ""]
    else:
        lines += [
            f"{voice.speakers} speakers, {voice.utterances} files; chance of identification "
            f"{_pct(voice.chance)}. EER 50 % = guessing. 95 % bootstrap intervals (test files resampled "
            f"{BOOT}×). Speaker embeddings: resemblyzer; words: {voice.recogniser} (read the WER of the "
            "originals first). Enrolment never includes the test file.",
            "",
            "| measure | value | 95 % interval |",
            "|---|---|---|",
        ]
        for k, label in LABELS.items():
            v, lo, hi = voice.measures[k]
            lines.append(f"| {label} | {_pct(v)} | {_pct(lo)} – {_pct(hi)} |")
        lines += [
            "",
            "| speaker | files | identified | identified (lazy) | similarity orig↔conv | WER orig | WER conv |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in voice.per_speaker:
            lines.append(
                f"| {p['speaker']} | {p['files']} | {_pct(p['identified'])} | {_pct(p['identified_lazy'])} | "
                f"{p['similarity']:.2f} | {_pct(p['wer_original'])} | {_pct(p['wer_converted'])} |"
            )
        lines.append("")
        if "report-voice.png" in plots:
            lines += ["![voice measures](report-voice.png)", ""]
    lines += ["## Video", ""]
    if not videos:
        lines += ["No video files in this batch.", ""]
    else:
        bad = [v for v in videos if not v.ok]
        lines += [
            f"{len(videos)} videos; largest correlation of output and input frames: "
            f"{max(v.leak for v in videos):.3f} (limit {LEAK_LIMIT}); "
            + ("**no output resembles its input**." if not bad else f"**{len(bad)} above the limit**."),
            "",
            "| file | frames | max corr. | input s | video s | audio s | audio − video start |",
            "|---|---|---|---|---|---|---|",
        ]
        for v in videos:
            lines.append(
                f"| {v.file} | {v.frames} | {v.leak:.3f}{'' if v.ok else ' ⚠'} | {v.input_s:.2f} | "
                f"{v.video_s:.2f} | {'—' if v.audio_s is None else f'{v.audio_s:.2f}'} | "
                f"{'—' if v.av_start_offset_ms is None else f'{v.av_start_offset_ms:.1f} ms'} |"
            )
        lines.append("")
        if "report-video.png" in plots:
            lines += ["![video checks](report-video.png)", ""]
    if failed:
        lines += ["## Failed files", ""] + [f"- `{r['input']}`: {r.get('error', '')}" for r in failed] + [""]
    return "\n".join(lines)


def _html(md: str, outdir: Path, plots: list[Path]) -> str:
    """A self-contained page: the Markdown's headings, paragraphs and tables, plots inline."""
    body, table = [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rest}</tbody></table>")
            table.clear()

    images = {p.name: base64.b64encode(p.read_bytes()).decode() for p in plots}
    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        m = re.match(r"!\[(.*)\]\((.*)\)", line)
        if m and m.group(2) in images:
            body.append(f'<img alt="{html.escape(m.group(1))}" src="data:image/png;base64,{images[m.group(2)]}">')
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<p>• {html.escape(line[2:])}</p>")
        elif line.strip():
            text = html.escape(line)
            text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
            text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
            body.append(f"<p>{text}</p>")
    flush()
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #ccc;"
        "padding:.25rem .5rem;text-align:left}th{background:#f2f2f2}img{max-width:100%}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>RAVAS report</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
