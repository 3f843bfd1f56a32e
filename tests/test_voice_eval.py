"""`ravasd eval`: the measures themselves (EER, WER) and the command on a small synthetic corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ravasd.errors import RavasError
from ravasd.evaluation.voice import collect, eer, wer


def test_eer_of_known_score_sets():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    assert eer(np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]), labels) == 0.0  # separable
    assert eer(np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]), labels) == 1.0  # inverted
    assert eer(np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.6, 0.4, 0.1]), labels) == pytest.approx(0.5)


def test_wer_counts_substitutions_insertions_deletions():
    assert wer("the cat sat", "the cat sat") == (0, 3)
    assert wer("the cat sat", "a cat sat down") == (2, 3)
    assert wer("Hello, world!", "hello") == (1, 2)


def test_inputs_must_name_their_speakers(tmp_path):
    (tmp_path / "noname.wav").write_bytes(b"")
    with pytest.raises(RavasError, match="speaker of noname.wav"):
        collect([tmp_path])
    (tmp_path / "noname.wav").unlink()
    (tmp_path / "ann_1.wav").write_bytes(b"")
    (tmp_path / "ann_2.wav").write_bytes(b"")
    with pytest.raises(RavasError, match="at least 2 speakers"):
        collect([tmp_path])


@pytest.mark.slow
def test_eval_voice_reports_privacy_and_intelligibility(tmp_path, ravas_home):
    pytest.importorskip("resemblyzer")
    pytest.importorskip("faster_whisper")
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "ravasd", *a],
        capture_output=True,
        text=True,  # noqa: E731
        timeout=600,
    )
    r = run("eval", "corpus", str(tmp_path / "c"), "--speakers", "4", "--sentences", "3")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "c").glob("*_*.wav"))) == 12 and len(list((tmp_path / "c").glob("*.txt"))) == 12
    r = run(
        "eval",
        "voice",
        str(tmp_path / "c"),
        "--voice",
        "ringmod",
        "--voice",
        "tenor",
        "--json",
        "--plot",
        str(tmp_path / "p.png"),
    )
    assert r.returncode == 0, r.stderr
    ring, tenor = json.loads(r.stdout)
    for rep in (ring, tenor):
        assert rep["speakers"] == 4 and rep["utterances"] == 12 and rep["chance"] == 0.25
        assert 0 <= rep["eer_ignorant"] <= 1 and 0 <= rep["eer_lazy_informed"] <= 1
        # the instrument first: Whisper understands the originals and the encoder tells the speakers apart
        assert rep["recogniser"] == "whisper" and rep["wer_original"] < 0.35 and rep["eer_original"] < 0.15
        for key in (
            "eer_ignorant",
            "eer_lazy_informed",
            "identification",
            "wer_converted",
            "dnsmos_ovrl_converted",
            "dnsmos_sig_converted",
            "dnsmos_p808_converted",
        ):
            lo, hi = rep["intervals"][key]
            assert lo <= rep[key] <= hi  # a 95 % interval around each figure
        for key in ("ovrl", "sig", "p808"):  # naturalness on DNSMOS's 1–5 scale, the same originals each time
            assert (
                1 <= rep[f"dnsmos_{key}_converted"] <= 5
                and rep[f"dnsmos_{key}_original"] == ring[f"dnsmos_{key}_original"]
            )
    # the ring modulator keeps the speaker; the target voice moves every speaker away from themselves
    assert tenor["similarity"] < ring["similarity"]
    assert tenor["eer_ignorant"] > ring["eer_ignorant"]
    # a robot voice sounds less natural than the speech it came from
    assert ring["dnsmos_ovrl_converted"] < ring["dnsmos_ovrl_original"]
    assert (tmp_path / "p.png").stat().st_size > 1000
    table = run("eval", "voice", str(tmp_path / "c"), "--voice", "nope")
    assert table.returncode != 0 and "unknown voice 'nope'" in table.stderr and "Traceback" not in table.stderr
    both = run("eval", "voice", str(tmp_path / "c"), "--split", "test")
    assert both.returncode != 0 and "either INPUT files or --split" in both.stderr


@pytest.mark.slow
def test_eval_voice_on_a_held_out_family_records_its_run(tmp_path, ravas_home):
    """`eval voice --split test --family flite`: the held-out flite speakers are made, measured per family,
    and --save-figures writes one run's document with its facts."""
    pytest.importorskip("resemblyzer")
    pytest.importorskip("faster_whisper")
    out = tmp_path / "figures.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ravasd",
            "eval",
            "voice",
            "--split",
            "test",
            "--family",
            "flite",
            "--data",
            str(tmp_path / "data"),
            "--voice",
            "ringmod",
            "--json",
            "--save-figures",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    (rep,) = json.loads(r.stdout)
    assert rep["speakers"] == 2 and rep["utterances"] == 24 and list(rep["families"]) == ["flite"]
    fam = rep["families"]["flite"]
    assert fam["utterances"] == 24 and fam["wer_original"] < 0.15 and fam["wer_converted"] < 0.3
    assert sorted(p.stem for p in (tmp_path / "data").glob("*.npz")) == ["flkal", "flkal16"]
    doc = json.loads(out.read_text())
    assert doc["command"].startswith("ravasd eval voice --split test") and len(doc["corpus_digest"]) == 64
    assert doc["date"] and "flite" in doc["corpus"] and list(doc["voices"]) == ["ringmod"]
    assert doc["voices"]["ringmod"]["families"]["flite"]["utterances"] == 24
    again = subprocess.run(
        [sys.executable, "-m", "ravasd", "eval", "voice", "--split", "test", "--family", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode != 0 and "no family 'nope'" in again.stderr and "Traceback" not in again.stderr


def test_realistic_corpus_is_deterministic_distinct_and_understood(tmp_path, ravas_home):
    """Kokoro mixtures as speakers: the same bytes twice, different speakers differ, and Whisper
    understands them (the instrument works on these voices before any voice is judged on them)."""
    pytest.importorskip("kokoro_onnx")
    pytest.importorskip("faster_whisper")
    from ravasd.evaluation import realistic
    from ravasd.evaluation.voice import WhisperRecogniser

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ravasd",
            "eval",
            "corpus",
            "--realistic",
            str(tmp_path / "r"),
            "--speakers",
            "2",
            "--sentences",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    wavs = sorted((tmp_path / "r").glob("kokoro*_*.wav"))
    assert [w.stem for w in wavs] == ["kokoro01_01", "kokoro01_02", "kokoro02_01", "kokoro02_02"]
    assert "Apache-2.0" in (tmp_path / "r" / "LICENSES.md").read_text()
    again = realistic.realistic_corpus(1, 1)[0]
    from ravasd.media.wav import read_wav

    x, rate = read_wav(wavs[0])
    assert rate == 16000 and np.abs(x - again.audio).max() < 1e-4  # 16-bit file vs float: the same speech
    a, b = realistic.speakers()[:2]
    assert not np.allclose(a[1], b[1])
    rec = WhisperRecogniser()
    rate = lambda errors: sum(e for e, _ in errors) / sum(n for _, n in errors)  # noqa: E731
    assert rate([wer(w.with_suffix(".txt").read_text(), rec(read_wav(w)[0])) for w in wavs]) < 0.2
    # … and the default voice keeps those words (the full corpus measures by how much: README)
    from ravasd.config import load_config
    from ravasd.evaluation.voice import convert

    cfg = load_config()
    assert cfg.audio.voice == "tenor"
    assert (
        rate([wer(w.with_suffix(".txt").read_text(), rec(convert(cfg, cfg.audio.voice, read_wav(w)[0]))) for w in wavs])
        < 0.2
    )


def test_realistic_corpus_piper_speaker_is_deterministic_and_understood():
    pytest.importorskip("piper")
    pytest.importorskip("faster_whisper")
    from ravasd.evaluation import realistic
    from ravasd.evaluation.corpus import EVAL_SENTENCES
    from ravasd.evaluation.voice import WhisperRecogniser

    say = realistic._piper()
    text = EVAL_SENTENCES[0]
    a, b = say(text.capitalize() + "."), say(text.capitalize() + ".")
    assert a.dtype == np.float32 and len(a) > 16000 and np.array_equal(a, b)
    errors, n = wer(text, WhisperRecogniser()(a))
    assert errors / n < 0.2
    assert realistic.SPEAKERS == 17 and "CC0" in realistic.LICENCE_TEXT


def _report(voice: str, wer_conv: float, lazy: float) -> dict:
    keys = (
        "wer_original",
        "wer_converted",
        "eer_original",
        "eer_ignorant",
        "eer_lazy_informed",
        "identification",
        "identification_lazy",
    )
    r = {
        "voice": voice,
        "speakers": 3,
        "utterances": 6,
        "recogniser": "whisper",
        "chance": 1 / 3,
        "similarity": 0.5,
        "wer_original": 0.05,
        "wer_converted": wer_conv,
        "eer_original": 0.1,
        "eer_ignorant": 0.4,
        "eer_lazy_informed": lazy,
        "identification": 0.3,
        "identification_lazy": 0.2,
    }
    r["intervals"] = {k: (r[k] * 0.9, r[k] * 1.1) for k in keys}
    return r


def test_saved_figures_hold_one_run_with_its_facts_and_every_family():
    from ravasd.audio.voices import figures

    tenor, deep = _report("tenor", 0.10, 0.40), _report("deep", 0.06, 0.20)
    tenor["families"] = {"espeak": _report("tenor", 0.30, 0.45), "piper": _report("tenor", 0.08, 0.0)}
    tenor["families"]["piper"]["eer_lazy_informed"] = None  # one speaker: no EER
    run = {
        "date": "2026-12-04",
        "commit": "0123456789abcdef0123+dirty",
        "command": "ravasd eval voice --split test",
        "corpus": "corpus A",
        "corpus_digest": "ab" * 32,
    }
    doc = figures.document([tenor, deep], run)
    assert set(doc["voices"]) == {"tenor", "deep"} and doc["corpus"] == "corpus A" and doc["recogniser"] == "whisper"
    assert {k: doc[k] for k in ("date", "commit", "command", "corpus_digest")} == {
        k: run[k] for k in ("date", "commit", "command", "corpus_digest")
    }
    assert figures.summary("tenor", doc) == {
        "wer_increase_points": 5.0,
        "eer_ignorant": 40.0,
        "eer_lazy_informed": 40.0,
    }
    assert figures.summary("nobody", doc)["eer_lazy_informed"] is None
    table = figures.markdown_table(doc, ["deep", "tenor"])
    assert "2026-12-04" in table and "`0123456789ab+dirty`" in table and "ravasd eval voice --split test" in table
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `deep` | 6.0 % [5.4–6.6] | +1.0 |") and "40.0 % [36.0–44.0]" in rows[1]
    # the family table: a column per family, – where a voice was not measured on it or a figure has no meaning
    assert "| voice | espeak | piper |" in table
    assert rows[2].startswith("| `deep` | – | – |")
    assert rows[3].startswith(
        "| `tenor` | +25.0 (30.0 % [27.0–33.0]) · 45.0 % [40.5–49.5] · – | +3.0 (8.0 % [7.2–8.8]) · – · – |"
    )
    # a run with other voices replaces the document: no figures of two runs side by side
    again = figures.document([_report("tenor", 0.2, 0.3)], {**run, "corpus": "corpus B"})
    assert set(again["voices"]) == {"tenor"} and again["corpus"] == "corpus B"


def test_family_measures_score_each_family_on_its_own():
    from ravasd.evaluation.voice import Item, Report, corpus_digest, family_measures, format_table

    rng = np.random.default_rng(1)
    centre = {s: rng.standard_normal(8) for s in ("a", "b", "c")}
    items = []
    for spk, fam in (("a", "one"), ("b", "one"), ("c", "solo")):
        for i in range(4):
            e = centre[spk] + 0.1 * rng.standard_normal(8)
            items.append(
                Item(
                    Path(f"{spk}_{i}"),
                    spk,
                    "the cat sat",
                    np.zeros(160, np.float32),
                    emb_orig=e,
                    emb_conv=e + 0.01,
                    hyp_orig="the cat sat",
                    hyp_conv="the cat" if fam == "solo" else "the cat sat",
                    mos_orig={"ovrl": 3.0, "sig": 3.0, "p808": 3.5},
                    mos_conv={"ovrl": 2.5, "sig": 2.6, "p808": 3.1},
                    family=fam,
                )
            )
    fams = family_measures(items)
    assert list(fams) == ["one", "solo"]
    assert fams["one"]["speakers"] == 2 and fams["one"]["utterances"] == 8 and fams["one"]["chance"] == 0.5
    assert fams["one"]["wer_converted"] == 0.0 and fams["solo"]["wer_converted"] == pytest.approx(1 / 3)
    assert fams["one"]["eer_lazy_informed"] == 0.0 and fams["one"]["identification"] == 1.0
    assert fams["solo"]["eer_lazy_informed"] is None and fams["solo"]["identification"] is None
    assert fams["solo"]["dnsmos_ovrl_converted"] == 2.5
    rep = Report("v", 3, 12, 0, 0, 1, 1, 1 / 3, 1, 0, 0.1, families=fams)
    table = format_table([rep])
    assert "solo (1 spk): WER converted" in table and "33.3 %" in table
    # the digest follows the speech: one changed sample, another digest
    before = corpus_digest(items)
    items[3].audio = items[3].audio.copy()
    items[3].audio[5] = 0.5
    assert corpus_digest(items) != before and len(before) == 64


def test_shipped_figures_cover_every_voice_and_the_readme_shows_them():
    """One file of figures (written by `eval voice --save-figures` from a real run) feeds `voices list`
    and the README's table: every registered voice has figures and the README block is generated."""
    from pathlib import Path

    from ravasd.audio.voices import VOICES, figures

    doc = figures.load()
    assert set(doc["voices"]) == set(VOICES), "re-run `ravasd eval voice … --save-figures` for new voices"
    for f in doc["voices"].values():
        for key, (lo, hi) in f["intervals"].items():
            assert lo <= f[key] <= hi
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert readme.count(figures.README_BEGIN) == readme.count(figures.README_END) == 1, "one generated table"
    block = readme[readme.index(figures.README_BEGIN) : readme.index(figures.README_END) + len(figures.README_END)]
    assert block == figures.markdown_table(order=figures.readme_order()), (
        "README voice table is stale: python -m ravasd.audio.voices.figures"
    )


def test_voices_list_shows_the_measured_figures(ravas_home):
    from ravasd.audio.voices import figures

    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "voices", "list", "--json"],
        capture_output=True,
        text=True,
        env={"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin"},
    )
    rows = {v["name"]: v for v in json.loads(r.stdout)}
    for name, row in rows.items():
        f = figures.summary(name)
        assert row["wer_plus"] == f["wer_increase_points"] and row["lazy_eer_%"] == f["eer_lazy_informed"]
    table = subprocess.run(
        [sys.executable, "-m", "ravasd", "voices", "list"],
        capture_output=True,
        text=True,
        env={"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "WER_PLUS" in table.splitlines()[0] and "None" not in table


def test_dnsmos_hears_noise_before_it_judges_a_voice(tmp_path):
    """The naturalness instrument first: DNSMOS scores clean speech above the same speech under
    white noise (0 dB SNR) and above a buzz (a 110 Hz pulse train)."""
    pytest.importorskip("speechmos")
    import soxr
    from test_virtual_mic_e2e import speech

    from ravasd.evaluation.voice import RATE, dnsmos

    x = soxr.resample(speech(tmp_path), 48000, RATE).astype(np.float32)
    noisy = x + np.random.default_rng(0).normal(0, float(np.sqrt(np.mean(x**2))), len(x)).astype(np.float32)
    buzz = np.zeros(len(x), np.float32)
    buzz[:: RATE // 110] = 0.5
    clean, hiss, pulses = dnsmos(x), dnsmos(noisy), dnsmos(buzz)
    assert clean["ovrl"] > hiss["ovrl"] + 0.5 and clean["ovrl"] > pulses["ovrl"] + 0.5, (clean, hiss, pulses)
    assert clean["sig"] > pulses["sig"], (clean, pulses)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_eval_call_scores_the_far_end_of_a_real_call(tmp_path, ravas_home):
    """`ravasd eval call`: the original and a voice through the daemon and headless Chromium's WebRTC
    call; each utterance is found at the far end (the original's words survive the path, so the
    cut is in the right place), with a measured delay and offline figures beside."""
    # the held-out flite speakers (made here, in seconds), two sentences each
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ravasd",
            "eval",
            "call",
            "--split",
            "test",
            "--family",
            "flite",
            "--per-speaker",
            "2",
            "--data",
            str(tmp_path / "data"),
            "--voice",
            "tenor",
            "--utterances",
            "3",
            "--json",
            "--details",
        ],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {row["voice"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"original", "tenor"}
    orig, tenor = rows["original"], rows["tenor"]
    assert orig["utterances"] == tenor["utterances"] == 3
    assert tenor["families"]["flite"]["utterances"] == 3 and 0 <= tenor["families"]["flite"]["wer_call"] <= 1
    assert orig["unavailable"] is None, orig["unavailable"]  # the feed's own call is made too
    assert orig["wer_call"] <= 0.3, orig["items"]  # every utterance cut where it was played
    assert tenor["delay_ms"] > orig["delay_ms"] - 50
    assert tenor["wer_call"] <= 0.7, tenor["items"]  # the cuts hold the utterances' words
    assert 0 <= tenor["wer_call_interval"][0] <= tenor["wer_call"] <= tenor["wer_call_interval"][1]
    assert all(it["hyp_call"].strip() for it in tenor["items"]), tenor["items"]
    assert 0 < tenor["delay_ms"] < 2000
    assert 1.0 <= tenor["dnsmos_ovrl_call"] <= 5.0 and 1.0 <= tenor["dnsmos_ovrl_offline"] <= 5.0


def test_eval_call_finds_each_utterance_where_the_program_delay_is_wrong():
    """The program's one delay can be hundreds of ms off (a voice whose pauses are not silent):
    each utterance is found on its own sound, within ±SEARCH_S, never in its neighbour."""
    from ravasd.evaluation.callclient import FarEnd
    from ravasd.research import call

    rng = np.random.default_rng(3)
    utts = [(rng.standard_normal(int(16000 * d)) * 0.2).astype(np.float32) for d in (0.8, 1.3, 0.6)]
    program, spans = call._program(utts)
    true_delay = 0.21
    far = np.concatenate([np.zeros(int(true_delay * call.RATE), np.float32), program])
    far += (rng.standard_normal(len(far)) * 1e-3).astype(np.float32)  # the line's hiss in the pauses
    end = FarEnd(far, call.RATE, 0.0, "")
    for wrong in (0.21, 0.55, 0.0):  # right, 340 ms late (cuts the first words), 210 ms early
        for x, (a, b) in zip(utts, spans):
            shift = call._refine(end, wrong + a, b - a, x)
            assert abs(wrong + shift - true_delay) < 0.005, (wrong, a, shift)
    # nothing there (a dropped call): no shift is invented
    silent = FarEnd(np.zeros_like(far), call.RATE, 0.0, "")
    assert call._refine(silent, 0.55 + spans[0][0], spans[0][1] - spans[0][0], utts[0]) == 0.0
