"""`ravasd anonymize` on real, generated media files of many kinds."""

from __future__ import annotations

import os
import subprocess
import sys

import av
import numpy as np
import pytest
from helpers import CAMERA_LIMIT, leaks
from mediagen import make_audio, make_video, textured_frame

from ravasd.config import load_config
from ravasd.errors import MediaError
from ravasd.research.anonymize import anonymize

VIDEO_CASES = {
    "avi_mpeg4_ac3_odd_size": dict(ext=".avi", vcodec="mpeg4", acodec="ac3", width=321, height=239, fps=15),
    "mp4_h264_aac": dict(ext=".mp4", vcodec="libx264", acodec="aac", width=320, height=240, fps=30),
    "mkv_h264_pcm_ntsc_rate": dict(
        ext=".mkv", vcodec="libx264", acodec="pcm_s16le", width=256, height=144, fps=30000 / 1001
    ),
    "mov_mpeg4_no_audio": dict(ext=".mov", vcodec="mpeg4", acodec=None, width=320, height=240, fps=25),
}


def _streams(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)] if v else []
    with av.open(str(path)) as c:
        samples = sum(f.samples for f in c.decode(audio=0)) if a else 0
        rate = a.codec_context.sample_rate if a else 0
    return frames, samples, rate


@pytest.mark.parametrize("case", list(VIDEO_CASES))
def test_anonymize_real_video_keeps_duration_and_no_input_pixels(case, media_dir, tmp_path):
    spec = dict(VIDEO_CASES[case])
    ext = spec.pop("ext")
    src = make_video(media_dir / f"{case}{ext}", seconds=2.0, **spec)
    out = tmp_path / "out.mp4"
    res = anonymize(src, out, load_config(), progress=False)
    frames, samples, rate = _streams(out)
    n_in = round(2.0 * spec["fps"])
    assert abs(len(frames) - n_in) <= 1
    assert frames[0].shape[:2] == (spec["height"] + spec["height"] % 2, spec["width"] + spec["width"] % 2)
    if spec["acodec"]:
        assert samples / rate == pytest.approx(2.0, abs=0.05)
    else:
        assert samples == 0
    inputs = [textured_frame(i, spec["width"], spec["height"]) for i in range(0, n_in, 3)]
    score = max(leaks(f[: spec["height"], : spec["width"]], inputs) for f in frames[::4])
    assert score < CAMERA_LIMIT, f"output correlates with input pixels ({score:.2f})"
    assert res.converter_errors == 0


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3"])
def test_anonymize_audio_only_keeps_length_and_changes_signal(ext, media_dir, tmp_path):
    src = make_audio(media_dir / f"speech{ext}", seconds=1.5, rate=22050 if ext == ".mp3" else 16000)
    out = tmp_path / "out.wav"
    anonymize(src, out, load_config(), progress=False)
    with av.open(str(out)) as c:
        y = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float32) / 32768
    assert len(y) / 48000 == pytest.approx(1.5, abs=0.03)
    with av.open(str(src)) as c:
        res = av.AudioResampler(format="flt", layout="mono", rate=48000)
        x = np.concatenate([o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in res.resample(f)])
    n = min(len(x), len(y))
    corr = np.corrcoef(x[:n], y[:n])[0, 1]
    assert abs(corr) < 0.5 and np.abs(y).max() > 0.05  # converted, not silent, not the input


def test_converter_crash_offline_gives_placeholders_not_input(media_dir, tmp_path, monkeypatch):
    from ravasd.video import converters

    calls = {"n": 0}

    class Crashy(converters.CardConverter):
        def process(self, frame):
            calls["n"] += 1
            if calls["n"] % 5 == 0:
                raise RuntimeError("boom")
            return super().process(frame)

    monkeypatch.setitem(converters.VIDEO_CONVERTERS, "card", (lambda cfg, w, h: Crashy(w, h), "test"))
    src = make_video(media_dir / "crash.mp4", seconds=1.0, fps=20)
    out = tmp_path / "o.mp4"
    res = anonymize(src, out, load_config(overrides={"video.converter": "card"}), progress=False)
    frames, _, _ = _streams(out)
    assert len(frames) == 20 and res.converter_errors == 4 and res.placeholders == 4
    inputs = [textured_frame(i, 320, 240) for i in range(20)]
    assert max(leaks(f, inputs) for f in frames) < CAMERA_LIMIT


def test_offline_lets_through_only_the_streams_own_anonymized_type(media_dir, tmp_path, monkeypatch):
    """The runner's converter guard, offline too: a video converter that returns a raw frame or
    another anonymized type (here audio) gets the placeholder for that frame, never its output."""
    from ravasd.engine.frames import AnonAudio
    from ravasd.video import converters

    calls = {"n": 0}

    class Wrong(converters.CardConverter):
        def process(self, frame):
            calls["n"] += 1
            if calls["n"] % 4 == 1:
                return frame  # the raw input itself
            if calls["n"] % 4 == 2:
                return AnonAudio(np.zeros(10, np.float32), 16000, frame.ts)  # anonymized, but not a frame
            return super().process(frame)

    monkeypatch.setitem(converters.VIDEO_CONVERTERS, "card", (lambda cfg, w, h: Wrong(w, h), "test"))
    src = make_video(media_dir / "wrong.mp4", seconds=1.0, fps=20)
    res = anonymize(src, tmp_path / "o.mp4", load_config(overrides={"video.converter": "card"}), progress=False)
    frames, _, _ = _streams(tmp_path / "o.mp4")
    assert len(frames) == 20 and res.converter_errors == 10 and res.placeholders == 10
    inputs = [textured_frame(i, 320, 240) for i in range(20)]
    assert max(leaks(f, inputs) for f in frames) < CAMERA_LIMIT


@pytest.mark.parametrize("damage", ["random_bytes", "truncated", "empty", "missing", "text"])
def test_bad_input_clear_error_and_no_output(damage, media_dir, tmp_path):
    bad = tmp_path / "bad.mp4"
    if damage == "random_bytes":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif damage == "truncated":
        good = make_video(media_dir / "full.mp4", seconds=1.0)
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "text":
        bad.write_text("this is not a video\n" * 100)
    out = tmp_path / "result.mp4"
    with pytest.raises(MediaError) as err:
        anonymize(bad, out, load_config(), progress=False)
    assert str(bad) in str(err.value)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ([] if damage == "missing" else ["bad.mp4"])


def test_cli_anonymize_end_to_end(media_dir, tmp_path, ravas_home):
    src = make_video(media_dir / "cli.avi", vcodec="mpeg4", acodec="ac3", seconds=1.0, fps=25)
    out = tmp_path / "anon.mp4"
    env = {"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin", "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"]}
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "anonymize", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and out.exists()
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "anonymize", str(src), "-o", str(out)], capture_output=True, text=True, env=env
    )
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "anonymize", str(tmp_path / "nope.avi"), "-o", str(tmp_path / "x.mp4")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_writer_accepts_irregular_live_frame_times(tmp_path):
    """Live recordings repeat frames and publish them at jittery times; the file must still close."""
    from ravasd.engine.frames import AnonFrame
    from ravasd.media.writer import MediaWriter

    w = MediaWriter(tmp_path / "live.mp4", width=64, height=48, fps=30)
    for i, t in enumerate([0, 0.0005, 0.033, 0.066, 0.1, 0.1001, 0.133]):
        w.write_frame(AnonFrame(np.full((48, 64, 3), i * 30, np.uint8), t))
    w.commit()
    frames, _, _ = _streams(tmp_path / "live.mp4")
    assert len(frames) == 7


def test_anonymize_with_a_look_ahead_voice_keeps_exact_length(media_dir, tmp_path):
    """McAdams has ~31 ms look-ahead: the offline run trims it and flushes the tail."""
    src = make_audio(media_dir / "la.wav", seconds=1.3, rate=48000)
    out = tmp_path / "o.wav"
    anonymize(src, out, load_config(overrides={"audio.voice": "mcadams"}), progress=False)
    with av.open(str(out)) as c:
        n = sum(f.samples for f in c.decode(audio=0))
    assert n == int(1.3 * 48000)
