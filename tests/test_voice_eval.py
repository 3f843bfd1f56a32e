"""`ravasd eval`: the measures themselves (EER, WER) and the command on a small synthetic corpus."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ravasd.errors import RavasError
from ravasd.evaluation.voice import collect, eer, wer


def test_eer_of_known_score_sets():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    assert eer(np.array([.9, .8, .7, .6, .4, .3, .2, .1]), labels) == 0.0          # separable
    assert eer(np.array([.1, .2, .3, .4, .6, .7, .8, .9]), labels) == 1.0          # inverted
    assert eer(np.array([.9, .8, .3, .2, .7, .6, .4, .1]), labels) == pytest.approx(0.5)


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
    run = lambda *a: subprocess.run([sys.executable, "-m", "ravasd", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=600)
    r = run("eval", "corpus", str(tmp_path / "c"), "--speakers", "4", "--sentences", "3")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "c").glob("*_*.wav"))) == 12 and len(list((tmp_path / "c").glob("*.txt"))) == 12
    r = run("eval", "voice", str(tmp_path / "c"), "--voice", "ringmod", "--voice", "tenor", "--json",
            "--plot", str(tmp_path / "p.png"))
    assert r.returncode == 0, r.stderr
    ring, tenor = json.loads(r.stdout)
    for rep in (ring, tenor):
        assert rep["speakers"] == 4 and rep["utterances"] == 12 and rep["chance"] == 0.25
        assert 0 <= rep["eer_ignorant"] <= 1 and 0 <= rep["eer_lazy_informed"] <= 1
        # the instrument first: Whisper understands the originals and the encoder tells the speakers apart
        assert rep["recogniser"] == "whisper" and rep["wer_original"] < 0.35 and rep["eer_original"] < 0.15
        for key in ("eer_ignorant", "eer_lazy_informed", "identification", "wer_converted"):
            lo, hi = rep["intervals"][key]
            assert lo <= rep[key] <= hi  # a 95 % interval around each figure
    # the ring modulator keeps the speaker; the target voice moves every speaker away from themselves
    assert tenor["similarity"] < ring["similarity"]
    assert tenor["eer_ignorant"] > ring["eer_ignorant"]
    assert (tmp_path / "p.png").stat().st_size > 1000
    table = run("eval", "voice", str(tmp_path / "c"), "--voice", "nope")
    assert table.returncode != 0 and "unknown voice 'nope'" in table.stderr and "Traceback" not in table.stderr


def test_realistic_corpus_is_deterministic_distinct_and_understood(tmp_path, ravas_home):
    """Kokoro mixtures as speakers: the same bytes twice, different speakers differ, and Whisper
    understands them (the instrument works on these voices before any voice is judged on them)."""
    pytest.importorskip("kokoro_onnx")
    pytest.importorskip("faster_whisper")
    from ravasd.evaluation import realistic
    from ravasd.evaluation.voice import WhisperRecogniser

    r = subprocess.run([sys.executable, "-m", "ravasd", "eval", "corpus", "--realistic", str(tmp_path / "r"),
                        "--speakers", "2", "--sentences", "2"], capture_output=True, text=True, timeout=600)
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
    errors = [wer((w.with_suffix(".txt")).read_text(), rec(read_wav(w)[0])) for w in wavs]
    assert sum(e for e, _ in errors) / sum(n for _, n in errors) < 0.2
