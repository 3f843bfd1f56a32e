"""Test stages: sources with recognisable raw data, converters with known output, recording sinks."""

from __future__ import annotations

import threading
import time

import numpy as np

from ravasd.engine.frames import AnonAudio, AnonFrame, RawAudio, RawFrame, require_anon
from ravasd.evaluation.leaks import CAMERA_LIMIT, camera_likeness  # noqa: F401 (CAMERA_LIMIT: for the tests)

W, H = 64, 48
CONVERTED = 200  # every pixel of a TestVideoConverter frame
TONE = 0.25  # every sample of a TestAudioConverter block


class NoiseVideoSource:
    """Paced frames of seeded noise: any leak of these pixels is detectable."""

    fps = 100.0
    size = (W, H)

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.rng = np.random.default_rng(1)
        self.n = 0
        self.closed = False

    def read(self) -> RawFrame:
        time.sleep(self.period)
        self.n += 1
        return RawFrame(self.rng.integers(0, 256, (H, W, 3), dtype=np.uint8), time.monotonic(), self.n)

    def close(self) -> None:
        self.closed = True


class NoiseAudioSource:
    rate = 8000
    block = 80

    def __init__(self) -> None:
        self.rng = np.random.default_rng(2)

    def read(self) -> RawAudio:
        time.sleep(self.block / self.rate)
        x = self.rng.uniform(-0.9, 0.9, self.block).astype(np.float32)
        return RawAudio(x, self.rate, time.monotonic() - self.block / self.rate)

    def close(self) -> None:
        pass


class TestVideoConverter:
    """Returns a flat frame of ``value``; misbehaves on request (raise / hang / leak)."""

    __test__ = False

    def __init__(
        self,
        value: int = CONVERTED,
        fail_every: int = 0,
        hang_on: int = 0,
        hang_event: threading.Event | None = None,
        leak: bool = False,
        returns_raw: bool = False,
    ):
        self.value, self.fail_every, self.hang_on = value, fail_every, hang_on
        self.hang_event = hang_event
        self.leak, self.returns_raw = leak, returns_raw
        self.n = 0

    def process(self, frame: RawFrame):
        self.n += 1
        if self.fail_every and self.n % self.fail_every == 0:
            raise RuntimeError("converter exploded")
        if self.hang_on and self.n == self.hang_on:
            self.hang_event.wait(30)
        if self.returns_raw:
            return frame
        if self.leak:
            return AnonFrame(frame.image, frame.ts)  # a buggy converter: the detector must catch it
        return AnonFrame(np.full((H, W, 3), self.value, np.uint8), frame.ts)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class TestAudioConverter:
    __test__ = False
    rate = 8000
    latency = 0

    def __init__(
        self, value: float = TONE, fail_every: int = 0, hang_on: int = 0, hang_event: threading.Event | None = None
    ):
        self.value, self.fail_every, self.hang_on, self.hang_event = value, fail_every, hang_on, hang_event
        self.n = 0

    def process(self, block: RawAudio) -> AnonAudio:
        self.n += 1
        if self.fail_every and self.n % self.fail_every == 0:
            raise RuntimeError("voice exploded")
        if self.hang_on and self.n == self.hang_on:
            self.hang_event.wait(30)
        return AnonAudio(np.full(len(block.samples), self.value, np.float32), block.rate, block.ts)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class RecordingSink:
    """Keeps (publish time, item) pairs; checks types like every real sink."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.items: list[tuple[float, object]] = []
        self.closed = False
        self.lock = threading.Lock()

    def write(self, item) -> None:
        require_anon(item, self.kind)
        assert not self.closed, "write after close"
        with self.lock:
            self.items.append((time.monotonic(), item))

    def close(self) -> None:
        self.closed = True

    def snapshot(self):
        with self.lock:
            return list(self.items)


def leaks(output: np.ndarray, inputs: list[np.ndarray]) -> float:
    """How much ``output`` looks like any of ``inputs`` (camera frames), blurred, rescaled, cropped
    or colour-shifted included: ``ravasd.evaluation.leaks.camera_likeness``; a leak reads above
    :data:`CAMERA_LIMIT`."""
    return camera_likeness(output, inputs)


def wait_until(pred, timeout: float = 5.0, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def ravasd(env: dict, *args: str, timeout: float = 10):
    """Run ``python -m ravasd ARGS`` with ``env``; returns the CompletedProcess (text output)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "ravasd", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


#: Opens the settings window off screen (no daemon needed) and prints what its Voice page shows once
#: every latency is in, and the settings the window took as effective.
_WINDOW_PROBE = r"""
import json, time
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
from ravasd.gui.settings import SettingsWindow
win = SettingsWindow(poll_ms=0, ask_to_start=False)
page = win.pages["Voice"]
end = time.monotonic() + 300
while not page.latencies_done.is_set() and time.monotonic() < end:
    app.processEvents()
    time.sleep(0.02)
rows = {page.table.item(r, 0).text(): page.table.item(r, 1).text() for r in range(page.table.rowCount())}
print(json.dumps({"rows": rows, "block_ms": win.cfg.audio.block_ms, "files_input": win.cfg.files.input,
                  "done": page.latencies_done.is_set()}))
win.close()
"""


def settings_window_probe(env: dict | None = None) -> dict:
    """What the settings window's Voice page lists (voice → latency text) and the effective settings it
    took (``block_ms``, ``files_input``), from a fresh window process (Qt off screen)."""
    import json
    import os
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", _WINDOW_PROBE],
        capture_output=True,
        text=True,
        timeout=360,
        env={**(env or os.environ), "QT_QPA_PLATFORM": "offscreen"},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["done"], "the Voice page's latencies did not come in"
    return out
