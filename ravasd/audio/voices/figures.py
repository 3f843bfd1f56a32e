"""What each voice costs and hides: the figures of the last evaluation, shipped with the package.

``figures.json`` beside this module is written by ``ravasd eval voice … --save-figures FILE`` from
one real run (never typed in, never merged from several): per voice, the word error rate of the
converted speech and of the originals, the EERs of an ignorant and a lazy-informed attacker,
identification accuracy and DNSMOS naturalness, each with its 95 % bootstrap interval, over all
speakers and per speaker family; and the run's date, source commit, command, corpus and the
corpus' digest. ``ravasd voices list`` and the settings window show them, and the README's voice
tables are :func:`markdown_table` of this file (a test keeps them equal).
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

FILE = "figures.json"
#: Report fields kept per voice (each with its interval under "intervals").
FIELDS = (
    "wer_original",
    "wer_converted",
    "eer_original",
    "eer_ignorant",
    "eer_lazy_informed",
    "identification",
    "identification_lazy",
    "chance",
    "dnsmos_ovrl_original",
    "dnsmos_ovrl_converted",
    "dnsmos_sig_original",
    "dnsmos_sig_converted",
    "dnsmos_p808_original",
    "dnsmos_p808_converted",
)
#: Run facts a figures document records.
RUN = ("date", "commit", "command", "corpus", "corpus_digest", "recogniser")
README_BEGIN = (
    "<!-- voice figures: generated from ravasd/audio/voices/figures.json (python -m ravasd.audio.voices.figures) -->"
)
README_END = "<!-- end of voice figures -->"


def load(path: Path | None = None) -> dict:
    """The figures document: {"corpus": str, "recogniser": str, "voices": {name: {field: value,
    "intervals": {field: [lo, hi]}}}}; an empty one when the file is missing or unreadable."""
    try:
        text = (Path(path) if path else resources.files(__package__).joinpath(FILE)).read_text()
        doc = json.loads(text)
        return doc if isinstance(doc, dict) and isinstance(doc.get("voices"), dict) else {"voices": {}}
    except (OSError, ValueError):
        return {"voices": {}}


def _fields(r: dict) -> dict:
    return {
        **{k: r.get(k) for k in FIELDS},
        "speakers": r["speakers"],
        "utterances": r["utterances"],
        "intervals": {k: list(v) for k, v in r["intervals"].items() if k in FIELDS},
    }


def document(reports: list[dict], run: dict) -> dict:
    """The figures document of one run: ``reports`` (``Report.summary()`` dicts, every voice of the
    run) and ``run`` (the :data:`RUN` facts except the recogniser, which the reports give)."""
    doc = {**{k: run.get(k) for k in RUN if k != "recogniser"}, "recogniser": reports[0]["recogniser"], "voices": {}}
    for r in reports:
        doc["voices"][r["voice"]] = {
            **_fields(r),
            "families": {f: _fields(v) for f, v in r.get("families", {}).items()},
        }
    return doc


def source_commit() -> str | None:
    """The git commit this package runs from (``+dirty`` when the checkout has changes), or None for an
    installed wheel: the figures say which code made them."""
    here = Path(__file__).resolve().parent
    try:
        # this very file tracked: a wheel installed inside some checkout is not that checkout's code
        tracked = subprocess.run(
            ["git", "-C", str(here), "ls-files", "--error-unmatch", Path(__file__).name],
            capture_output=True,
            text=True,
            timeout=10,
        )
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if tracked.returncode != 0 or head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def summary(name: str, doc: dict | None = None) -> dict:
    """{"wer_increase_points", "eer_lazy_informed", "eer_ignorant"} (percent, one decimal) of voice
    ``name``, or Nones when it was not measured."""
    f = (doc or load())["voices"].get(name)
    if not f:
        return {"wer_increase_points": None, "eer_ignorant": None, "eer_lazy_informed": None}
    pct = lambda x: round(100 * x, 1)  # noqa: E731
    return {
        "wer_increase_points": pct(f["wer_converted"] - f["wer_original"]),
        "eer_ignorant": pct(f["eer_ignorant"]),
        "eer_lazy_informed": pct(f["eer_lazy_informed"]),
    }


def _cell(f: dict, key: str, pct: bool = True) -> str:
    v, iv = f.get(key), f["intervals"].get(key)
    if v is None:
        return "–"
    if not pct:
        return f"{v:.2f}" + (f" [{iv[0]:.2f}–{iv[1]:.2f}]" if iv and iv[0] is not None else "")
    return f"{100 * v:.1f} %" + (f" [{100 * iv[0]:.1f}–{100 * iv[1]:.1f}]" if iv and iv[0] is not None else "")


def _wer_plus(f: dict) -> str:
    a, b = f.get("wer_original"), f.get("wer_converted")
    return "–" if a is None or b is None else f"{100 * (b - a):+.1f}"


def markdown_table(doc: dict | None = None, order: list[str] | None = None) -> str:
    """The README's voice tables (markdown, between :data:`README_BEGIN` and :data:`README_END`): all
    speakers, then per family."""
    doc = doc or load()
    voices = doc["voices"]
    names = [n for n in (order or list(voices)) if n in voices]
    if not names:
        return f"{README_BEGIN}\n(no figures measured yet)\n{README_END}"
    first = voices[names[0]]
    commit = (doc.get("commit") or "unknown")[:12] + ("+dirty" if str(doc.get("commit")).endswith("+dirty") else "")
    lines = [
        README_BEGIN,
        f"Measured on {doc['corpus']} ({first['speakers']} speakers, {first['utterances']} utterances; "
        f"recogniser: {doc['recogniser']}) on {doc.get('date') or 'an unrecorded date'}, commit `{commit}`, "
        f"corpus sha256 `{(doc.get('corpus_digest') or 'unrecorded')[:16]}…`, by `{doc.get('command') or '?'}`. "
        f"Originals: WER {_cell(first, 'wer_original')}, speaker EER {_cell(first, 'eer_original')}, "
        f"DNSMOS overall {_cell(first, 'dnsmos_ovrl_original', False)}; identification chance "
        f"{100 * first['chance']:.1f} %.",
        "",
        "| voice | WER | WER increase | EER ignorant | EER lazy-informed | identification "
        "| identification, lazy-informed | DNSMOS overall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        f = voices[n]
        lines.append(
            f"| `{n}` | {_cell(f, 'wer_converted')} | {_wer_plus(f)} "
            f"| {_cell(f, 'eer_ignorant')} | {_cell(f, 'eer_lazy_informed')} | {_cell(f, 'identification')} "
            f"| {_cell(f, 'identification_lazy')} | {_cell(f, 'dnsmos_ovrl_converted', False)} |"
        )
    fams = list(dict.fromkeys(k for n in names for k in voices[n].get("families", {})))
    if fams:
        per = {
            fam: next(voices[n]["families"][fam] for n in names if fam in voices[n].get("families", {})) for fam in fams
        }
        lines += [
            "",
            "Per speaker family: WER increase in points (converted WER) · lazy-informed EER (within the "
            "family; – for one speaker) · DNSMOS overall. Originals: "
            + "; ".join(
                f"{fam} ({per[fam]['speakers']} spk) WER {_cell(per[fam], 'wer_original')}, "
                f"DNSMOS {_cell(per[fam], 'dnsmos_ovrl_original', False)}"
                for fam in fams
            )
            + ".",
            "",
            "| voice | " + " | ".join(fams) + " |",
            "|---|" + "---|" * len(fams),
        ]
        for n in names:
            cells = []
            for fam in fams:
                f = voices[n].get("families", {}).get(fam)
                cells.append(
                    "–"
                    if not f
                    else f"{_wer_plus(f)} ({_cell(f, 'wer_converted')}) · {_cell(f, 'eer_lazy_informed')} · "
                    f"{_cell(f, 'dnsmos_ovrl_converted', False)}"
                )
            lines.append(f"| `{n}` | " + " | ".join(cells) + " |")
    lines.append(README_END)
    return "\n".join(lines)


def readme_order() -> list[str]:
    """Voices in registry order (the order ``voices list`` shows)."""
    from . import VOICES

    return list(VOICES)


if __name__ == "__main__":  # python -m ravasd.audio.voices.figures: print the README block
    print(markdown_table(order=readme_order()))
