"""Fail-closed guarantees of the stream runner: no raw pixel/sample ever reaches a sink."""

from __future__ import annotations

import statistics
import threading
import time

import numpy as np
import pytest
from helpers import (
    CAMERA_LIMIT,
    CONVERTED,
    TONE,
    H,
    NoiseAudioSource,
    NoiseVideoSource,
    RecordingSink,
    TestAudioConverter,
    TestVideoConverter,
    W,
    leaks,
    wait_until,
)

from ravasd.engine import placeholder
from ravasd.engine.frames import AnonAudio, AnonFrame, RawAudio, RawFrame
from ravasd.engine.runner import AudioPublisher, StreamRunner, VideoPublisher

CARDS = {s: placeholder._card(W, H, s) for s in placeholder.STATES}


def video_runner(converter, source=None, sink=None, deadline=0.1, hang=0.3, period=0.02):
    src = source or NoiseVideoSource()
    sink = sink or RecordingSink(AnonFrame)
    r = StreamRunner(
        source=lambda: src,
        converter=converter,
        sink=lambda: sink,
        publisher=VideoPublisher(period, W, H),
        deadline=deadline,
        hang_timeout=hang,
    )
    return r, src, sink


def audio_runner(converter, sink=None, deadline=0.05, hang=0.3):
    src = NoiseAudioSource()
    sink = sink or RecordingSink(AnonAudio)
    r = StreamRunner(
        source=lambda: src,
        converter=converter,
        sink=lambda: sink,
        publisher=AudioPublisher(src.block / src.rate, src.rate, src.block),
        deadline=deadline,
        hang_timeout=hang,
        max_backlog=4,
    )
    return r, src, sink


def classify(frame: AnonFrame) -> str:
    """'converted' / a placeholder state / raises if the frame is anything else (a leak)."""
    if frame.placeholder:
        for state, card in CARDS.items():
            if np.array_equal(frame.image, card):
                return state
        raise AssertionError("placeholder flag on a frame that is not a card")
    if (frame.image == CONVERTED).all():
        return "converted"
    if (frame.image == 17).all():
        return "hung-instance"
    raise AssertionError("sink received a frame that is neither converted nor a placeholder")


def audio_kind(block: AnonAudio) -> str:
    if not block.samples.any():
        return "silence"
    if np.all(block.samples == np.float32(TONE)):
        return "converted"
    raise AssertionError("sink received audio that is neither converted nor silence")


def test_startup_shows_placeholder_until_converter_is_ready():
    def slow_factory():
        time.sleep(0.5)
        return TestVideoConverter()

    r, src, sink = _started(video_runner(slow_factory))
    time.sleep(0.35)
    early = [classify(f) for _, f in sink.snapshot()]
    assert len(early) >= 8 and set(early) == {"starting"}
    assert wait_until(lambda: any(classify(f) == "converted" for _, f in sink.snapshot()))
    r.stop()


def _started(runner_tuple):
    r, src, sink = runner_tuple
    r.start()
    return r, src, sink


def test_converter_exception_restarts_and_never_leaks():
    r, src, sink = _started(video_runner(lambda: TestVideoConverter(fail_every=3)))
    time.sleep(1.0)
    r.stop()
    kinds = [classify(f) for _, f in sink.snapshot()]
    assert r.status.restarts >= 5
    assert kinds.count("converted") >= 10
    assert "exploded" in r.status.last_error


def test_converter_hang_is_replaced_and_its_late_output_discarded():
    release = threading.Event()
    made = []

    def factory():
        c = TestVideoConverter(value=17, hang_on=5, hang_event=release) if not made else TestVideoConverter()
        made.append(c)
        return c

    r, src, sink = _started(video_runner(factory, hang=0.3, deadline=0.08))
    assert wait_until(lambda: r.status.hangs == 1, 3.0)
    t_hang = time.monotonic()
    assert wait_until(lambda: any(classify(f) == "converted" for _, f in sink.snapshot()), 3.0)
    release.set()  # the abandoned instance now returns a frame: it must never be published
    time.sleep(0.4)
    r.stop()
    items = sink.snapshot()
    kinds = [classify(f) for _, f in items]
    assert "no-signal" in kinds  # the placeholder covered the hang
    assert not any(classify(f) == "hung-instance" for t, f in items if t > t_hang)
    assert r.status.restarts >= 1 and len(made) >= 2


def test_pause_shows_paused_card_and_resume_restores():
    r, src, sink = _started(video_runner(TestVideoConverter))
    assert wait_until(lambda: any(classify(f) == "converted" for _, f in sink.snapshot()))
    r.pause()
    time.sleep(0.06)  # one period of grace for the frame already in flight
    t_pause = time.monotonic()
    time.sleep(0.4)
    during = [classify(f) for t, f in sink.snapshot() if t > t_pause]
    assert during and set(during) == {"paused"}
    r.resume()
    assert wait_until(lambda: classify(sink.snapshot()[-1][1]) == "converted", 2.0)
    r.stop()


def test_shutdown_ends_on_a_placeholder_and_closes_everything():
    r, src, sink = _started(video_runner(TestVideoConverter))
    assert wait_until(lambda: len(sink.snapshot()) > 5)
    t0 = time.monotonic()
    r.stop()
    assert time.monotonic() - t0 < 2.0
    last = sink.snapshot()[-1][1]
    assert classify(last) == "stopped"
    assert sink.closed and src.closed
    n = len(sink.snapshot())
    time.sleep(0.1)
    assert len(sink.snapshot()) == n  # nothing after stop


def test_converter_that_returns_raw_frames_is_never_published():
    r, src, sink = _started(video_runner(lambda: TestVideoConverter(returns_raw=True)))
    time.sleep(0.5)
    r.stop()
    kinds = {classify(f) for _, f in sink.snapshot()}
    assert "converted" not in kinds and r.status.restarts > 0


def test_leak_detector_flags_a_leaking_converter():
    """The pixel-leak measure must be able to fail: a converter that copies input is caught."""
    inputs = []

    class Recording(NoiseVideoSource):
        def read(self):
            f = super().read()
            inputs.append(f.image)
            return f

    leaking = RecordingSink(AnonFrame)
    r, _, _ = video_runner(lambda: TestVideoConverter(leak=True), source=Recording(), sink=leaking)
    r.start()
    time.sleep(0.4)
    r.stop()
    real = [f.image for _, f in leaking.snapshot() if not f.placeholder]
    assert real and max(leaks(img, inputs) for img in real[:5]) > CAMERA_LIMIT
    card = CARDS["paused"]
    assert leaks(card, inputs[:20]) < CAMERA_LIMIT


def test_source_failure_keeps_output_alive_and_reopens():
    attempts = []

    class Flaky(NoiseVideoSource):
        def read(self):
            if self.n == 5 and len(attempts) < 3:
                raise OSError("camera unplugged")
            return super().read()

    def factory():
        attempts.append(1)
        s = Flaky()
        return s

    sink = RecordingSink(AnonFrame)
    r = StreamRunner(
        source=factory,
        converter=TestVideoConverter,
        sink=lambda: sink,
        publisher=VideoPublisher(0.02, W, H),
        deadline=0.1,
    ).start()
    assert wait_until(lambda: len(attempts) >= 3 and r.status.published > 20, 5.0)
    r.stop()
    kinds = [classify(f) for _, f in sink.snapshot()]
    assert r.status.source_errors >= 2 and "no-signal" in kinds


def test_a_reopened_source_resets_the_converters_streaming_state():
    """A microphone that comes back is a new signal: the voice forgets the old one (``reset()``)."""
    resets, opened = [], []

    class Stateful(TestAudioConverter):
        def reset(self):
            resets.append(time.monotonic())

    class Flaky(NoiseAudioSource):
        n = 0

        def read(self):
            self.n += 1
            if self.n == 20 and len(opened) < 2:
                raise OSError("microphone unplugged")
            return super().read()

    def factory():
        opened.append(1)
        return Flaky()

    sink = RecordingSink(AnonAudio)
    src = NoiseAudioSource()
    r = StreamRunner(
        source=factory,
        converter=Stateful,
        sink=lambda: sink,
        publisher=AudioPublisher(src.block / src.rate, src.rate, src.block),
        deadline=0.05,
        hang_timeout=0.3,
        max_backlog=4,
    ).start()
    assert wait_until(lambda: len(opened) >= 2 and r.status.published > 60, 5.0)
    r.stop()
    assert len(resets) == 1  # once, after the reopen; not for every block
    assert {audio_kind(b) for _, b in sink.snapshot()} <= {"converted", "silence"}


def test_video_is_delayed_by_the_audio_latency_for_sync():
    r, src, sink = _started(video_runner(TestVideoConverter, deadline=0.3))
    r.set_delay(0.15)
    time.sleep(1.2)
    r.stop()
    lags = [t - f.ts for t, f in sink.snapshot() if not f.placeholder]
    assert len(lags) > 20
    skew = statistics.median(lags) - 0.15
    assert abs(skew) <= 0.04, f"A/V skew {skew * 1000:.0f} ms"


# ---------------------------------------------------------------------------------------- audio


def test_audio_exception_gives_silence_never_input():
    r, src, sink = _started(audio_runner(lambda: TestAudioConverter(fail_every=4)))
    time.sleep(1.0)
    r.stop()
    kinds = [audio_kind(b) for _, b in sink.snapshot()]
    assert kinds.count("converted") > 30 and r.status.restarts >= 5


def test_audio_hang_fills_silence_at_steady_cadence_then_recovers():
    release = threading.Event()
    made = []

    def factory():
        made.append(1)
        return TestAudioConverter(hang_on=20, hang_event=release) if len(made) == 1 else TestAudioConverter()

    r, src, sink = _started(audio_runner(factory, hang=0.3))
    assert wait_until(lambda: r.status.hangs == 1, 3.0)
    time.sleep(0.5)
    release.set()
    r.stop()
    items = sink.snapshot()
    kinds = [audio_kind(b) for _, b in items]
    assert "silence" in kinds and kinds[-1] == "converted"
    samples = sum(len(b.samples) for _, b in items)
    elapsed = items[-1][0] - items[0][0]
    assert samples / src.rate == pytest.approx(elapsed, rel=0.35)  # the timeline kept moving


def test_audio_pause_is_silence():
    r, src, sink = _started(audio_runner(TestAudioConverter))
    assert wait_until(lambda: r.status.published > 5)
    r.pause()
    time.sleep(0.05)
    t_pause = time.monotonic()
    time.sleep(0.4)
    during = [audio_kind(b) for t, b in sink.snapshot() if t > t_pause]
    r.resume()
    assert wait_until(lambda: audio_kind(sink.snapshot()[-1][1]) == "converted", 2.0)
    r.stop()
    assert len(during) > 10 and set(during) == {"silence"}


@pytest.mark.parametrize("make", ["null_video", "null_audio", "file_video", "file_audio"])
def test_every_sink_rejects_raw_items(make, tmp_path):
    from ravasd.audio.sinks import FileAudioSink, NullAudioSink
    from ravasd.video.sinks import FileVideoSink, NullVideoSink

    raw_v = RawFrame(np.zeros((H, W, 3), np.uint8), 0.0)
    raw_a = RawAudio(np.zeros(80, np.float32), 8000, 0.0)
    sink, raw = {
        "null_video": (NullVideoSink, raw_v),
        "null_audio": (NullAudioSink, raw_a),
        "file_video": (lambda: FileVideoSink(tmp_path / "v.mp4", W, H, 25), raw_v),
        "file_audio": (lambda: FileAudioSink(tmp_path / "a.wav", 8000), raw_a),
    }[make]
    s = sink()
    with pytest.raises(TypeError, match="raw data must never reach a sink"):
        s.write(raw)


def test_audio_latency_includes_the_voices_own_latency_so_video_waits_for_it():
    """A voice that answers 150 ms late (an 80 ms-frame neural voice and its compute margin): the
    audio latency the supervisor delays video by must include those 150 ms."""

    class Late(TestAudioConverter):
        def __init__(self):
            super().__init__()
            self.latency = int(0.15 * NoiseAudioSource().rate)

    r, src, sink = _started(audio_runner(Late))
    assert wait_until(lambda: r.status.published > 40, 5.0)
    r.stop()
    assert 150 <= r.status.latency_ms < 400, r.status.latency_ms


def test_calibrate_reaches_a_calibrating_converter_and_is_refused_by_others():
    """The control channel's calibrate is a typed message and a stage trait (no attribute probing):
    a converter with ``calibrate`` gets it in the convert thread; one without says so in status."""

    class Calibrated(TestVideoConverter):
        calls = 0

        def calibrate(self) -> None:
            Calibrated.calls += 1

    r, _, _ = _started(video_runner(Calibrated))
    try:
        assert wait_until(lambda: r.status.published > 3, 5)  # the converter is built and running
        r.calibrate()
        assert wait_until(lambda: Calibrated.calls == 1, 3)
        assert r.status.last_error == ""
    finally:
        r.stop()
    r, _, _ = _started(video_runner(TestVideoConverter))
    try:
        r.calibrate()
        assert wait_until(lambda: "cannot calibrate" in r.status.last_error, 3)
    finally:
        r.stop()
