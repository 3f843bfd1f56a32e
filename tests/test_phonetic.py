"""The phonetic content encoder: its corpus and splits, the shipped model, the recipe that makes it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from ravasd.audio.phonetic import encoder as enc
from ravasd.errors import RavasError
from ravasd.evaluation.corpus import EVAL_SENTENCES
from ravasd.evaluation.phonetic import corpus, families, score
from ravasd.evaluation.phonetic.espeak import Espeak


@pytest.fixture(scope="module")
def held_out():
    """Two held-out espeak-ng speakers × 4 evaluation sentences, with their frame truth."""
    maker = corpus.Maker()
    test = families.speakers("test", "espeak")
    return {s.name: [maker.say(s, t) for t in EVAL_SENTENCES[:4]] for s in test[:2]}


def test_splits_hold_whole_voices_out():
    every = families.speakers()
    assert len({s.name for s in every}) == len(every) and all("_" not in s.name for s in every)
    variant = {s.name: s.spec[0].split("+")[1] for s in every if s.family == "espeak"}
    by_split = {sp: {variant[s.name] for s in families.speakers(sp, "espeak")} for sp in families.SPLITS}
    assert by_split["test"] and not by_split["test"] & (by_split["train"] | by_split["dev"])
    assert not {v.lower() for v in by_split["test"]} & families._used_before()
    held = [i for i, st in enumerate(families.KOKORO_STYLES) if families.KOKORO_SPLIT[st] != "train"]
    for s in families.speakers("train", "kokoro-mix"):
        assert all(s.spec[0][i] == 0 for i in held), f"{s.name} mixes a held-out style"
    assert {s.family for s in families.speakers("test")} == set(families.FAMILIES)
    assert not {s.family for s in families.speakers("train")} & {"piper"}
    assert not set(families.training_sentences(500, 1)) & set(EVAL_SENTENCES)
    assert families.training_sentences(5, 3) == families.training_sentences(5, 3)


def test_espeak_reports_the_phones_it_spoke_where_it_spoke_them():
    spoken = Espeak().speak("she sees", "en-us+m1")
    names = [p for p, _ in spoken.phones]
    assert names[:2] == ["ʃ", "iː"] and "z" in names
    starts = [s for _, s in spoken.phones]
    assert starts == sorted(starts) and starts[-1] < len(spoken.audio)
    x = spoken.audio
    # the /ʃ/ span is noise (high zero-crossing rate), the /iː/ span voiced (low)
    sh = x[starts[0] : starts[1]]
    ee = x[starts[1] : starts[2]]
    zcr = [np.mean(np.abs(np.diff(np.sign(seg))) > 0) for seg in (sh, ee)]
    assert zcr[0] > 2 * zcr[1]
    with pytest.raises(Exception, match="no voice"):
        Espeak().speak("x", "en-us+nobody")


def test_fold_keeps_the_inventory_closed():
    assert corpus.PHONES == enc.PHONES
    assert corpus.fold(["ɔːɹ", "ɾ", "t"]) == [
        corpus.INDEX["ɔː"],
        corpus.INDEX["ɹ"],
        corpus.INDEX["t"],
        corpus.INDEX["t"],
    ]
    with pytest.raises(Exception, match="inventory lacks"):
        corpus.fold(["ǃ"])


def test_timed_phoneme_characters_become_frame_labels():
    x = np.full(16000, 0.1, np.float32)  # loud everywhere: only the timings decide
    # "ðˈɪs, ɪz": a stress mark's span goes to its vowel, the word gap splits, the comma is a pause
    timed = [("ð", 0.1, 0.2), ("ˈ", 0.2, 0.25), ("ɪ", 0.25, 0.35), ("s", 0.35, 0.5), (",", 0.5, 0.6)]
    timed += [(" ", 0.6, 0.7), ("ɪ", 0.7, 0.8), ("z", 0.8, 0.9), (".", 0.9, 0.9)]
    lab = [corpus.PHONES[i] for i in corpus.timed_labels(timed, 100, x)]
    assert lab[:10] == ["sil"] * 10 and lab[10:20] == ["ð"] * 10 and lab[20:35] == ["ɪ"] * 15
    assert lab[35:50] == ["s"] * 15 and lab[50:65] == ["sil"] * 15 and lab[65:80] == ["ɪ"] * 15
    assert lab[80:90] == ["z"] * 10 and lab[90:] == ["sil"] * 10
    # several characters make one phone; a phone that folds into two shares its span
    two = [("a", 0.0, 0.1), ("ɪ", 0.1, 0.2), ("ɔ", 0.2, 0.3), ("ː", 0.3, 0.4), ("ɹ", 0.4, 0.6)]
    lab = [corpus.PHONES[i] for i in corpus.timed_labels(two, 60, x[:9600])]
    assert lab == ["aɪ"] * 20 + ["ɔː"] * 20 + ["ɹ"] * 20  # "ɔːɹ" is one unit, folded into two
    assert corpus.timed_labels([("ǃ", 0.0, 0.1)], 10, x[:1600]) is None  # no such phone: align it instead


def test_kokoro_speaks_the_same_audio_with_its_phone_timings():
    pytest.importorskip("kokoro_onnx")
    pytest.importorskip("onnx")
    from ravasd.evaluation.realistic import _engine

    who = families.speakers("train", "kokoro-style")[0]
    text = EVAL_SENTENCES[0]
    maker = corpus.Maker()
    u = maker.say(who, text)
    plain, styles = _engine()
    style = corpus.kokoro_style(styles, who.spec[0])
    audio, rate = plain.create(text.capitalize() + ".", voice=style, speed=who.spec[1], lang="en-us")
    import soxr

    assert np.array_equal(soxr.resample(np.asarray(audio, np.float32), rate, corpus.RATE).astype(np.float32), u.audio)
    # the labels say what was said, in order: collapsed, they are the text's phones
    said = [p for i, p in enumerate(u.frames) if p != 0 and (i == 0 or u.frames[i - 1] != p)]
    assert score.edit_distance(said, u.phones.tolist()) <= 0.15 * len(u.phones)
    # and where: fricative frames are noise (zero crossings), vowel frames voiced
    frames = np.lib.stride_tricks.sliding_window_view(u.audio, corpus.HOP)[:: corpus.HOP]
    zcr = np.mean(np.abs(np.diff(np.sign(frames), axis=1)) > 0, axis=1)
    n = min(len(zcr), len(u.frames))
    kind = lambda names: np.isin(u.frames[:n], [corpus.INDEX[p] for p in names])  # noqa: E731
    assert np.median(zcr[:n][kind(["s", "ʃ", "f", "θ"])]) > 2 * np.median(zcr[:n][kind(["iː", "ɑː", "æ", "aɪ", "oʊ"])])


def test_forced_alignment_keeps_order_and_finds_the_pauses():
    from ravasd.evaluation.phonetic.train import forced_alignment

    truth = [0, 0, 3, 3, 3, 0, 7, 7, 3, 3, 0, 0]  # sil, ɪ, sil, ð, ɪ, sil
    logp = np.full((len(truth), enc.CLASSES), -6.0)
    logp[np.arange(len(truth)), truth] = -0.05
    logp[4, 7] = -0.01  # a frame the model hears wrong is still given to the phone the order needs
    assert forced_alignment(logp, np.array([3, 7, 3])).tolist() == truth
    # every phone gets at least one frame, even against the evidence
    flat = np.full((4, enc.CLASSES), -3.0)
    assert sorted(set(forced_alignment(flat, np.array([5, 9]))) - {0}) == [5, 9]


def test_shipped_model_streams_exactly_and_looks_ahead_at_most_40_ms(held_out):
    from importlib import resources

    path = resources.files("ravasd.audio.phonetic").joinpath("phones.npz")
    assert path.is_file() and path.stat().st_size <= 5e6
    assert enc.LOOKAHEAD_S <= 0.040
    x = next(iter(held_out.values()))[0].audio
    whole = enc.posteriors(x)
    assert whole.shape == (-(-len(x) // enc.HOP), enc.CLASSES)
    assert np.allclose(whole.sum(axis=1), 1, atol=1e-4)
    rng = np.random.default_rng(1)
    for sizes in ([1], [160], [320], [1000], list(rng.integers(1, 900, 40))):
        s, out, i, k = enc.PhoneStream(), [], 0, 0
        while i < len(x):
            n = int(sizes[k % len(sizes)])
            out.append(s.push(x[i : i + n]))
            i, k = i + n, k + 1
        out.append(s.flush())
        assert np.abs(np.concatenate(out) - whole).max() < 1e-5
    # frame t depends on nothing past sample 160 (t + AHEAD) + 400
    t = 100
    cut = enc.HOP * (t + enc.AHEAD) + enc.WIN
    y = x.copy()
    y[cut:] = rng.standard_normal(len(y) - cut).astype(np.float32) * 0.3
    assert np.abs(enc.posteriors(y)[: t + 1] - whole[: t + 1]).max() < 1e-5
    assert np.abs(enc.posteriors(y)[t + 6] - whole[t + 6]).max() > 1e-3


def test_silence_in_is_silence_out():
    post = enc.posteriors(np.zeros(16000, np.float32))
    assert np.mean(post.argmax(axis=1) == 0) > 0.95  # class 0 is "sil"
    assert enc.decode(post) == []


def test_the_shipped_model_hears_phones_of_voices_it_never_heard(held_out):
    per, frames = score.score_utterances(held_out)
    rate = per[:, 0].sum() / per[:, 1].sum()
    assert rate < 0.45, f"PER {rate:.1%} on held-out espeak-ng speakers"
    acc = frames[:, 0].sum() / frames[:, 1].sum()
    assert acc > 0.5, f"frame accuracy {acc:.1%}"
    # the measure can fail: a model of random weights does not hear phones
    rng = np.random.default_rng(0)
    w = enc.shipped()
    noise = enc.Weights(
        w.mean,
        w.std,
        *(
            rng.standard_normal(a.shape).astype(np.float32) * a.std()
            for a in (w.conv1_w, w.conv1_b, w.conv2_w, w.conv2_b)
        ),
        w.gru,
        rng.standard_normal(w.out_w.shape).astype(np.float32) * w.out_w.std(),
        w.out_b,
    )
    bad, _ = score.score_utterances(held_out, noise)
    assert bad[:, 0].sum() / bad[:, 1].sum() > 0.8


def test_edit_distance():
    assert score.edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert score.edit_distance([1, 2, 3], [1, 3]) == 1
    assert score.edit_distance([], [4, 5]) == 2
    assert score.edit_distance([1, 2], [2, 1]) == 2


def test_recipe_is_deterministic_and_exports_what_the_encoder_runs(tmp_path, held_out):
    torch = pytest.importorskip("torch")
    import dataclasses

    from ravasd.evaluation.phonetic import train

    utts = [u for us in held_out.values() for u in us][:6]
    # two without frame truth, as flite's: aligned by stage 1's model, then again by stage 2's
    utts = utts[:4] + [dataclasses.replace(u, frames=None) for u in utts[4:]]
    outs = []
    for k in range(2):
        net, mean, std = train.train(utts, 1, 1, threads=1, log=lambda _: None, realign_epochs=1, bandlimit=0.5)
        train.export(net, mean, std, tmp_path / f"m{k}.npz")
        outs.append(net)
    a, b = (np.load(tmp_path / f"m{k}.npz") for k in range(2))
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    w = enc.Weights.load(tmp_path / "m0.npz")
    net = outs[0]
    sd = {k: v.half().float() for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    x = utts[0].audio
    f = (enc.log_mel(enc.frame(x)) - w.mean) / w.std
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(f[None]).float()), -1)[0].numpy()
    assert np.abs(enc.posteriors(x, w) - ref).max() < 1e-4


def _loudness_agrees(x: np.ndarray, y: np.ndarray) -> bool:
    """True when the two signals' 10 ms log-loudness contours correlate above 0.8."""
    e = [np.log(np.add.reduceat(a.astype(np.float64) ** 2, np.arange(0, len(a), 160)) + 1e-6) for a in (x, y)]
    return bool(np.corrcoef(*e)[0, 1] > 0.8)


def test_deeper_copies_keep_the_words_where_they_were_and_lower_the_voice(held_out):
    from ravasd.audio.voices import stream
    from ravasd.audio.voices.shift import PitchFormant
    from ravasd.evaluation.phonetic import train

    def raised(u):  # the copies are made of the (female) training styles: a voice an octave up
        v = PitchFormant(enc.RATE, 2.0, 1.1)
        y = stream(v, u.audio, enc.RATE, 1600, tail=v.latency)[v.latency : v.latency + len(u.audio)]
        return corpus.Utt(u.text, y.astype(np.float32), u.phones, u.frames)

    utts = [raised(u) for us in held_out.values() for u in us][:3]
    flite_like = corpus.Utt(utts[0].text, utts[0].audio, utts[0].phones, None)
    deeper = train.lowered([*utts, flite_like])
    assert len(deeper) == 3  # only utterances with frame truth: their labels must still hold
    assert [d.text for d in deeper] == [u.text for u in utts]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(deeper, train.lowered(utts)))  # seeded
    for u, d in zip(utts, deeper):
        assert len(d.audio) == len(u.audio) and d.frames is u.frames and d.phones is u.phones
        assert train.median_f0(u.audio) > 170 and 70 < train.median_f0(d.audio) < 150  # a man's
        assert _loudness_agrees(u.audio, d.audio)  # the same sounds at the same time


def test_varied_copies_move_each_voice_into_the_range_and_keep_the_words_where_they_were(held_out):
    from ravasd.evaluation.phonetic import train

    utts = [u for us in held_out.values() for u in us]
    flite_like = corpus.Utt(utts[0].text, utts[0].audio, utts[0].phones, None)
    copies = train.revoiced([*utts, flite_like], train.VARIED_F0, train.VARIED_FORMANT, seed=3)
    assert len(copies) == len(utts)  # only utterances with frame truth
    again = train.revoiced(utts, train.VARIED_F0, train.VARIED_FORMANT, seed=3)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(copies, again))  # seeded
    before = np.array([train.median_f0(u.audio) for u in utts])
    after = np.array([train.median_f0(c.audio) for c in copies])
    lo, hi = train.VARIED_F0
    # each copy's F0 lands in the range (unless the ratio's limits 0.5–2 stop it), the copies spread over it
    reach = np.clip(np.array([lo, hi])[None] / before[:, None], 0.5, 2.0) * before[:, None]
    assert np.all((after > 0.9 * reach[:, 0]) & (after < 1.1 * reach[:, 1]))
    assert after.max() > 1.5 * after.min() and (after > 1.15 * before).any()
    for u, c in zip(utts, copies):
        assert len(c.audio) == len(u.audio) and c.frames is u.frames and c.phones is u.phones
        assert _loudness_agrees(u.audio, c.audio)


def test_padded_utterances_follow_silence_with_their_labels_in_step(held_out):
    from ravasd.evaluation.phonetic import train

    utts = [u for us in held_out.values() for u in us]
    flite_like = corpus.Utt(utts[0].text, utts[0].audio, utts[0].phones, None)
    out = train.padded([*utts, flite_like], 0.6, seed=1)
    again = train.padded([*utts, flite_like], 0.6, seed=1)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(out, again))  # seeded
    leads = []
    for u, p in zip(utts, out):
        a = int(np.flatnonzero(p.audio)[0]) // corpus.HOP  # the pad is whole frames of zeros
        b = len(p.frames) - len(u.frames) - a
        leads.append(a)
        assert 0 <= a <= 60 and 0 <= b <= 30 and len(p.audio) // corpus.HOP == len(p.frames)
        assert np.array_equal(p.audio[a * corpus.HOP : a * corpus.HOP + len(u.audio)], u.audio)
        assert np.array_equal(p.frames[a : a + len(u.frames)], u.frames)  # the words where they were
        assert np.all(p.frames[:a] == corpus.INDEX["sil"]) and np.all(p.frames[a + len(u.frames) :] == 0)
    assert len(set(leads)) > 1 and max(leads) > 10  # the leads vary and some are long
    assert out[-1].frames is None and len(out[-1].audio) >= len(flite_like.audio)


def test_a_damaged_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "phones.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(Exception, match="phone model .* cannot be read"):
        enc.Weights.load(bad)
    # a model trained for another look-ahead: its first convolution spans another number of frames
    with np.load(resources.files("ravasd.audio.phonetic").joinpath("phones.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["conv1_w"] = np.concatenate([arrays["conv1_w"], arrays["conv1_w"][..., :1]], axis=2)
    np.savez(bad, **arrays)
    with pytest.raises(RavasError, match="phone model .* cannot be read .*another look-ahead"):
        enc.Weights.load(bad)


def test_eval_phones_prints_per_family(tmp_path, ravas_home):
    cmd = [sys.executable, "-m", "ravasd", "eval", "phones", "--family", "flite", "--data", str(tmp_path), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (fl,) = doc["families"]
    assert fl["family"] == "flite" and fl["split"] == "test" and fl["speakers"] == 2 and fl["utterances"] == 24
    assert 0 <= fl["per_interval"][0] <= fl["per"] <= fl["per_interval"][1] <= 1.5
    assert fl["frame_accuracy"] is None
    bad = subprocess.run([*cmd[:5], "--family", "klingon"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no family 'klingon'" in bad.stderr and "Traceback" not in bad.stderr
