"""Video sinks. Each accepts only :class:`AnonFrame` (``require_anon``) and is called from the
runner's publish thread at the output cadence."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pyvirtualcam

from ..devices import virtual
from ..devices.display import NO_DISPLAY_FIX, display_available
from ..engine.frames import AnonFrame, require_anon
from ..errors import DeviceError
from ..media.writer import LiveRecording, MediaWriter


def open_virtual_camera(width: int, height: int, fps: float, platform: str | None = None) -> VirtualCameraSink:
    """A :class:`VirtualCameraSink` on the first of this OS's backends (``devices.virtual``) that opens;
    else one :class:`DeviceError` listing each backend's failure and the fixes."""
    errors = []
    for b in virtual.camera_backends(platform):
        try:
            return VirtualCameraSink(width, height, fps, device=b.find(), backend=b.name, fix=b.fix)
        except DeviceError as err:
            errors.append(f"'{b.name}' backend: {err.message}")
    raise virtual.camera_unavailable(errors, platform)


class VirtualCameraSink:
    """Publishes frames to a virtual webcam through pyvirtualcam (v4l2loopback / OBS / Unity).

    ``device``/``backend`` pass through to ``pyvirtualcam.Camera``; frames are RGB.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        device: str | None = None,
        backend: str | None = None,
        i420: bool | None = None,
        fix: str | None = None,
    ) -> None:
        # v4l2loopback: we hand over I420 ourselves, the format every call app accepts; the other
        # backends take RGB. Odd sizes cannot be I420, so they are rounded up to even.
        self.i420 = (backend == "v4l2loopback") if i420 is None else i420
        if self.i420:
            width, height = width + width % 2, height + height % 2
        fmt = pyvirtualcam.PixelFormat.I420 if self.i420 else pyvirtualcam.PixelFormat.RGB
        try:
            self.cam = pyvirtualcam.Camera(width, height, fps, fmt=fmt, device=device, backend=backend, print_fps=False)
        except (RuntimeError, KeyError, ValueError) as err:
            raise DeviceError(f"not available ({err})", fix or virtual.camera_fix()) from None
        self.size = (width, height)
        self.device = self.cam.device

    def write(self, frame: AnonFrame) -> None:
        require_anon(frame, AnonFrame)
        img = frame.image
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        if self.i420:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420)  # (H*3/2, W) planar Y, U, V
        self.cam.send(np.ascontiguousarray(img))

    def close(self) -> None:
        self.cam.close()


class PreviewSink:
    """An on-screen window ("RAVAS preview") showing exactly what the virtual camera gets."""

    title = "RAVAS preview"

    def __init__(self) -> None:
        if not display_available():  # OpenCV's Qt window would abort the whole process
            raise DeviceError("The preview window needs a display, and there is none.", NO_DISPLAY_FIX + ".")
        self.cv2 = cv2
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            raise DeviceError(
                f"Preview window cannot open: {err.msg.strip()}",
                "run on a desktop session (DISPLAY/WAYLAND_DISPLAY set) or use video.sink: null.",
            ) from None

    def write(self, frame: AnonFrame) -> None:
        require_anon(frame, AnonFrame)
        self.cv2.imshow(self.title, self.cv2.cvtColor(frame.image, self.cv2.COLOR_RGB2BGR))
        self.cv2.waitKey(1)

    def close(self) -> None:
        try:
            self.cv2.destroyWindow(self.title)
        except Exception:
            pass


class FileVideoSink:
    """Records the published frames (H.264) as they were published (publish-time timeline)."""

    slow_close = True  # close() flushes the encoder: the runner waits for it

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        self.writer = MediaWriter(path, width=width, height=height, fps=fps)
        self.recording = LiveRecording(self.writer)
        self._t0: float | None = None

    @property
    def failed(self) -> str:
        """Why the recording stopped ("" while it is fine); see :class:`LiveRecording`."""
        return self.recording.failed

    def write(self, frame: AnonFrame) -> None:
        require_anon(frame, AnonFrame)
        # the recording's timeline is the publish time: a repeated frame is shown again, later
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        self.recording.write(self.writer.write_frame, AnonFrame(frame.image, now - self._t0, frame.placeholder))

    def close(self) -> None:
        self.recording.commit()


class NullVideoSink:
    """Discards frames (counts them). For tests and machines without a virtual camera."""

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame: AnonFrame) -> None:
        require_anon(frame, AnonFrame)
        self.frames += 1

    def close(self) -> None:
        pass
