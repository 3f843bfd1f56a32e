"""What each voice costs and hides: the figures of the last evaluation, shipped with the package.

``figures.json`` beside this module is written by ``ravasd eval voice … --save-figures FILE`` from a
real run (never typed in): per voice, the word error rate of the converted speech and of the
originals, the EERs of an ignorant and a lazy-informed attacker and identification accuracy, each
with its 95 % bootstrap interval, and the corpus it was measured on. ``ravasd voices list`` shows
them, and the README's voice table is :func:`markdown_table` of this file (a test keeps them equal).
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

FILE = "figures.json"
#: Report fields kept per voice (each with its interval under "intervals").
FIELDS = ("wer_original", "wer_converted", "eer_original", "eer_ignorant", "eer_lazy_informed",
          "identification", "identification_lazy", "chance")
README_BEGIN = "<!-- voice figures: generated from ravasd/audio/voices/figures.json (python -m ravasd.audio.voices.figures) -->"
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


def merge(doc: dict, reports: list[dict], corpus: str) -> dict:
    """``doc`` with the voices of ``reports`` (``Report.summary()`` dicts) replaced; one corpus per
    file, so a report from another corpus starts a new document."""
    if doc.get("corpus") != corpus:
        doc = {"voices": {}}
    doc = {**doc, "corpus": corpus}
    for r in reports:
        doc["recogniser"] = r["recogniser"]
        doc["voices"][r["voice"]] = {
            **{k: r[k] for k in FIELDS}, "speakers": r["speakers"], "utterances": r["utterances"],
            "intervals": {k: list(v) for k, v in r["intervals"].items() if k in FIELDS}}
    return doc


def summary(name: str, doc: dict | None = None) -> dict:
    """{"wer_increase_points", "eer_lazy_informed", "eer_ignorant"} (percent, one decimal) of voice
    ``name``, or Nones when it was not measured."""
    f = (doc or load())["voices"].get(name)
    if not f:
        return {"wer_increase_points": None, "eer_ignorant": None, "eer_lazy_informed": None}
    pct = lambda x: round(100 * x, 1)  # noqa: E731
    return {"wer_increase_points": pct(f["wer_converted"] - f["wer_original"]),
            "eer_ignorant": pct(f["eer_ignorant"]), "eer_lazy_informed": pct(f["eer_lazy_informed"])}


def _cell(f: dict, key: str) -> str:
    lo, hi = f["intervals"][key]
    return f"{100 * f[key]:.1f} % [{100 * lo:.1f}–{100 * hi:.1f}]"


def markdown_table(doc: dict | None = None, order: list[str] | None = None) -> str:
    """The README's voice table (markdown, between :data:`README_BEGIN` and :data:`README_END`)."""
    doc = doc or load()
    voices = doc["voices"]
    names = [n for n in (order or list(voices)) if n in voices]
    if not names:
        return f"{README_BEGIN}\n(no figures measured yet)\n{README_END}"
    first = voices[names[0]]
    lines = [README_BEGIN,
             f"Measured on {doc['corpus']} ({first['speakers']} speakers, {first['utterances']} utterances; "
             f"recogniser: {doc['recogniser']}). Originals: WER {_cell(first, 'wer_original')}, "
             f"speaker EER {_cell(first, 'eer_original')}; identification chance {100 * first['chance']:.1f} %.",
             "",
             "| voice | WER | WER increase | EER ignorant | EER lazy-informed | identification | identification, lazy-informed |",
             "|---|---|---|---|---|---|---|"]
    for n in names:
        f = voices[n]
        lines.append(f"| `{n}` | {_cell(f, 'wer_converted')} | {100 * (f['wer_converted'] - f['wer_original']):+.1f} "
                     f"| {_cell(f, 'eer_ignorant')} | {_cell(f, 'eer_lazy_informed')} | {_cell(f, 'identification')} "
                     f"| {_cell(f, 'identification_lazy')} |")
    lines.append(README_END)
    return "\n".join(lines)


def readme_order() -> list[str]:
    """Voices in registry order (the order ``voices list`` shows)."""
    from . import VOICES

    return list(VOICES)


if __name__ == "__main__":  # python -m ravasd.audio.voices.figures: print the README block
    print(markdown_table(order=readme_order()))
