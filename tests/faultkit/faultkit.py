"""Fault kit for end-to-end tests: loaded into every Python process of a daemon under test (the test
puts this folder on PYTHONPATH, whose ``sitecustomize`` imports this module, and names a kit folder
in RAVAS_FAULTKIT); inert without it.

It fakes only what this machine lacks, at the edge of the product:
- a camera, ``video.camera: faultkit`` — OpenCV's ``VideoCapture`` for that name delivers 640 × 360
  textures (:func:`camera_image`: one of four, changing each second) at 30 fps; while the file
  ``camera_gone`` exists the camera has vanished (closed, reads fail);
- a virtual camera (no v4l2loopback here): "RAVAS Camera" is found, and ``pyvirtualcam.Camera`` records
  every frame it is sent, as the call app would see it, downscaled to 128 × 96, into ``camera.bin``
  (per frame: a float64 CLOCK_MONOTONIC time, then RGB bytes);
- faults of the converters, switched by files in the kit folder: ``audio_raise`` / ``video_raise``
  (each call raises), ``audio_hang`` / ``video_hang`` (each call blocks while the file exists) and
  planted leaks ``audio_leak`` / ``video_leak`` (the converter returns its raw input as anonymized —
  the video frame blurred and rescaled — so a test can show its detectors fire at the real outputs).
"""

from __future__ import annotations

import os
import sys

KIT = os.environ.get("RAVAS_FAULTKIT")
CAM_W, CAM_H, CAM_FPS = 640, 360, 30.0
REC_W, REC_H = 128, 96


def camera_image(k: int):
    """The fake camera's picture ``k`` (0..3), RGB 640 × 360: seeded noise and a bright bar."""
    import numpy as np

    rng = np.random.default_rng(100 + k)
    img = rng.integers(0, 255, (CAM_H, CAM_W, 3), dtype=np.uint8)
    img[40:120, 60 + 120 * k : 200 + 120 * k] = 250
    return img


def _exists(name: str) -> bool:
    return os.path.exists(os.path.join(KIT, name))


class _FakeCapture:
    """What ``cv2.VideoCapture('faultkit')`` returns: a paced camera that can vanish."""

    def __init__(self) -> None:
        import time

        import cv2

        self._time, self._cv2 = time, cv2
        self._open = not _exists("camera_gone")
        self._frames = [cv2.cvtColor(camera_image(k), cv2.COLOR_RGB2BGR) for k in range(4)]
        self._next = time.monotonic()

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self._open

    def read(self):
        if not self._open or _exists("camera_gone"):
            self._open = False
            return False, None
        now = self._time.monotonic()
        if self._next > now:
            self._time.sleep(self._next - now)
        self._next = max(self._next + 1 / CAM_FPS, self._time.monotonic() - 0.1)
        return True, self._frames[int(self._time.monotonic()) % 4].copy()

    def get(self, prop: int) -> float:
        cv2 = self._cv2
        return {cv2.CAP_PROP_FRAME_WIDTH: CAM_W, cv2.CAP_PROP_FRAME_HEIGHT: CAM_H, cv2.CAP_PROP_FPS: CAM_FPS}.get(
            prop, 0.0
        )

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self._open = False


class _RecordingCamera:
    """``pyvirtualcam.Camera`` stand-in: records what the call app would see."""

    def __init__(self, width: int, height: int, fps: float, fmt=None, device=None, backend=None, **_kw) -> None:
        import pyvirtualcam

        self.width, self.height, self.fps = width, height, fps
        self.i420 = fmt == pyvirtualcam.PixelFormat.I420
        self.device = device or "/dev/video-faultkit"
        self._out = None

    def send(self, frame) -> None:
        import struct
        import time

        import cv2
        import numpy as np

        img = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420) if self.i420 else frame
        assert img.shape[:2] == (self.height, self.width), (img.shape, self.width, self.height)
        small = cv2.resize(img, (REC_W, REC_H), interpolation=cv2.INTER_AREA)
        if self._out is None:
            self._out = open(os.path.join(KIT, "camera.bin"), "ab", buffering=0)
        self._out.write(struct.pack("<d", time.monotonic()) + np.ascontiguousarray(small).tobytes())

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


class _Faulty:
    """A converter that misbehaves while its kit files say so; otherwise the real one."""

    def __init__(self, inner, kind: str, size=None) -> None:
        self._inner, self._kind, self._size = inner, kind, size

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def process(self, item):
        import time

        k = self._kind
        if _exists(f"{k}_raise"):
            raise RuntimeError(f"faultkit: {k} converter raises")
        deadline = time.monotonic() + 60
        while _exists(f"{k}_hang") and time.monotonic() < deadline:
            time.sleep(0.02)
        if _exists(f"{k}_leak"):
            from ravasd.engine.frames import AnonAudio, AnonFrame

            if k == "audio":
                return AnonAudio(item.samples.copy(), item.rate, item.ts)
            import cv2

            img = cv2.resize(cv2.GaussianBlur(item.image, (0, 0), 1.5), self._size, interpolation=cv2.INTER_AREA)
            return AnonFrame(img, item.ts)
        return self._inner.process(item)


def install() -> None:
    import cv2
    import pyvirtualcam

    import ravasd.devices.virtual as virtual
    import ravasd.wiring as wiring

    real_capture = cv2.VideoCapture

    def capture(source, *args, **kwargs):
        return _FakeCapture() if source == "faultkit" else real_capture(source, *args, **kwargs)

    cv2.VideoCapture = capture
    virtual.find_v4l2_device = lambda *a, **k: "/dev/video-faultkit"
    pyvirtualcam.Camera = _RecordingCamera

    make_voice, make_video = wiring.make_voice, wiring.make_video_converter
    wiring.make_voice = lambda *a, **k: _Faulty(make_voice(*a, **k), "audio")
    wiring.make_video_converter = lambda cfg, w, h, *a, **k: _Faulty(make_video(cfg, w, h, *a, **k), "video", (w, h))


if KIT:
    try:
        install()
    except Exception as err:  # a kit that cannot install must fail the test loudly, not pass quietly
        print(f"faultkit: cannot install: {err!r}", file=sys.stderr)
        raise
