"""The avatar video converter: track → filter → render. No camera pixel reaches the output: the
frame is used only by the tracker; the output is rendered from the avatar model alone.

When the face is lost the last pose is held for ``hold_s``, then eases to a living idle pose
(breathing, blinks at natural intervals, gaze shifts, a slight head drift), while the mouth follows
the converted voice: its level opens the jaw, the vowel heard in it shapes the lips (visemes,
:mod:`ravasd.audio.viseme`: "oh/oo" round, "ee" spread, "ah" open).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ...engine.frames import AnonFrame, RawFrame
from ...errors import ConfigError, ModelError
from ..detection_log import DetectionLogWriter
from ..filters import PoseFilter
from ..tracking import ARKIT_NAMES, open_tracker
from .idle import IdleLife
from .library import find
from .model import load_avatar
from .renderer import AvatarRenderer

log = logging.getLogger(__name__)
JAW = ARKIT_NAMES.index("jawOpen")
FUNNEL = ARKIT_NAMES.index("mouthFunnel")
PUCKER = ARKIT_NAMES.index("mouthPucker")
STRETCH = (ARKIT_NAMES.index("mouthStretchLeft"), ARKIT_NAMES.index("mouthStretchRight"))
BLINK = (ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight"))


class RenderShedder:
    """Lowers the avatar's render scale when frames take longer than the frame budget (the CPU is
    busy: audio comes first) and raises it again when there is room. Steps of 0.75× down to
    ``floor``; up only after ``calm_s`` of frames well inside budget, so it does not flicker.

    ``update(seconds)`` is called by the converter after each frame (video worker thread) and returns
    the scale for the next one.
    """

    FACTOR = 0.75

    def __init__(self, fps: float, top: float, floor: float = 0.4, slow_s: float = 1.0, calm_s: float = 8.0) -> None:
        self.budget = 1.0 / max(1.0, fps)
        self.top, self.floor = top, min(top, floor)
        self.scale = top
        self.slow_s, self.calm_s = slow_s, calm_s
        self._ema = 0.0
        self._since = time.monotonic()
        self._state = "ok"  # "slow" / "calm" while the EMA stays beyond a threshold

    @property
    def shedding(self) -> bool:
        return self.scale < self.top - 1e-6

    def update(self, seconds: float, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._ema = seconds if self._ema == 0.0 else 0.85 * self._ema + 0.15 * seconds
        state = "slow" if self._ema > 0.8 * self.budget else "calm" if self._ema < 0.35 * self.budget else "ok"
        if state != self._state:
            self._state, self._since = state, now
        if state == "slow" and now - self._since >= self.slow_s and self.scale > self.floor:
            self.scale = max(self.floor, self.scale * self.FACTOR)
            self._since, self._ema = now, 0.0
        elif state == "calm" and now - self._since >= self.calm_s and self.scale < self.top:
            self.scale = min(self.top, self.scale / self.FACTOR)
            self._since, self._ema = now, 0.0
        return self.scale


class AvatarConverter:
    def __init__(
        self,
        tracker,
        renderer,
        level: Callable[[], tuple] | None = None,
        hold_s: float = 0.5,
        ease_s: float = 0.6,
        log_path: str | None = None,
        fps: float | None = None,
    ) -> None:
        self.tracker, self.renderer, self.level = tracker, renderer, level
        # load shedding only when there is a frame rate to keep (the live daemon), not offline
        self.shedder = RenderShedder(fps, renderer.scale) if fps else None
        self.gain, self.gamma = renderer.model.response()
        self.filter = PoseFilter()
        self.life = IdleLife()
        self.hold_s, self.ease_s = hold_s, ease_s
        self._last = (np.zeros(len(ARKIT_NAMES), np.float32), 0.0, 0.0, 0.0)
        self._last_t = -1e9
        self.face_visible = False
        self._log = None
        self._t_in = 0.0
        if log_path:
            self._log = DetectionLogWriter(log_path)

    def idle_pose(self, t: float, age: float) -> tuple[np.ndarray, float, float, float]:
        """Ease from the last tracked pose to a living idle (:class:`IdleLife`: irregular blinks,
        gaze shifts, head drift); the mouth follows the voice.

        ``level()`` gives (rms, p_open, p_spread, p_round) — see :class:`ravasd.audio.level.LevelTap` —
        or a bare rms: the level opens the jaw, the viseme probabilities shape the lips."""
        e = math.exp(-max(0.0, age - self.hold_s) / self.ease_s)
        w, yaw, pitch, roll = self._last
        life_w, life_yaw, life_pitch, life_roll = self.life.at(t)
        w = w * e + life_w * (1 - e)
        for i in BLINK:  # a blink shows at once, also while still easing out of the last pose
            w[i] = max(w[i], life_w[i])
        if self.level is not None:
            shape = self.level()
            rms, p_open, p_spread, p_round = (
                (shape, 0.0, 0.0, 0.0) if isinstance(shape, (int, float)) else (*tuple(shape)[:4], 0.0, 0.0, 0.0)[:4]
            )
            opening = min(1.0, float(rms) * 4.0)
            # lips hold their shape through the quieter part of a syllable: the square root of the level
            lips = math.sqrt(opening)
            w[JAW] = max(w[JAW], opening * float(np.clip(0.7 + 0.3 * p_open - 0.35 * p_spread - 0.3 * p_round, 0, 1)))
            w[FUNNEL] = max(w[FUNNEL], lips * float(p_round))
            w[PUCKER] = max(w[PUCKER], 0.5 * lips * float(p_round))
            for i in STRETCH:
                w[i] = max(w[i], 0.8 * lips * float(p_spread))
        return (
            w.astype(np.float32),
            yaw * e + life_yaw * (1 - e),
            pitch * e + life_pitch * (1 - e),
            roll * e + life_roll * (1 - e),
        )

    def process(self, frame: RawFrame) -> AnonFrame:
        self._t_in = time.perf_counter()
        t = frame.ts
        pose = self.tracker.track(frame.image, t) if self.tracker is not None else None
        self.face_visible = pose is not None
        if pose is not None:
            w, yaw, pitch, roll = self.filter.apply(pose)
            self._last = (np.minimum(1.0, self.gain * np.power(w, self.gamma)).astype(np.float32), yaw, pitch, roll)
            self._last_t = t
            w, yaw, pitch, roll = self._last
            if self._log is not None:
                self._log.write(pose)
        elif t - self._last_t <= self.hold_s:
            w, yaw, pitch, roll = self._last
        else:
            w, yaw, pitch, roll = self.idle_pose(t, t - self._last_t)
        img = self.renderer.render(w, yaw, pitch, roll, breathe=math.sin(t * 2 * math.pi * 0.25), t=t)
        if self.shedder is not None:
            # wall time of track + render: preemption by busier processes counts, which is the point
            scale = self.shedder.update(time.perf_counter() - self._t_in)
            if scale != self.renderer.scale:
                log.info(
                    "avatar render scale %.2f → %.2f (%s)",
                    self.renderer.scale,
                    scale,
                    "CPU busy: giving way" if scale < self.renderer.scale else "room again",
                )
                self.renderer.set_scale(scale)
        return AnonFrame(img, frame.ts)

    @property
    def render_scale(self) -> float:
        """The scale frames are rendered at now (status: below the configured one = shedding)."""
        return float(self.renderer.scale)

    @property
    def top_scale(self) -> float:
        """The scale it returns to when the CPU has room (video.render_scale resolved)."""
        return float(self.shedder.top) if self.shedder is not None else float(self.renderer.scale)

    def calibrate(self) -> None:
        self.filter.start_calibration()

    def reset(self) -> None:
        self.filter.reset()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.tracker is not None:
            self.tracker.close()
        self.renderer.release()


def make(cfg, width: int, height: int, level: Callable[[], tuple] | None = None, live: bool = False) -> AvatarConverter:
    renderer = renderer_from_config(cfg, width, height)
    try:
        tracker = open_tracker(cfg)
    except ModelError as err:
        # no face model (offline, downloads off): the avatar still appears, idles and talks with the
        # voice — better than a grey card; `ravasd doctor` names the missing file
        log.warning("face tracking is off: %s", err)
        tracker = None
    except Exception as err:  # a model file MediaPipe cannot load (corrupt, another format): the same
        log.warning(
            "face tracking is off: the face model could not be loaded (%s: %s); `ravasd doctor` checks it",
            type(err).__name__,
            str(err)[:200],
        )
        tracker = None
    return AvatarConverter(
        tracker, renderer, level=level, log_path=cfg.video.detection_log, fps=cfg.video.fps if live else None
    )


def renderer_from_config(cfg, width: int, height: int, avatar: str | None = None):
    """The renderer the daemon, ``render`` and ``bench`` share: ``avatar`` (default video.avatar) with
    the configured background colour/picture and render scale."""

    return AvatarRenderer(
        load_avatar(find(avatar or cfg.video.avatar)),
        width,
        height,
        background=_rgb(cfg.video.background),
        scale=cfg.video.render_scale,
        background_image=load_background(cfg),
        framing=cfg.video.framing,
    )


def _rgb(hexcolor: str) -> tuple[float, float, float]:
    h = hexcolor.lstrip("#")
    return tuple(int(h[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def load_background(cfg) -> np.ndarray | None:
    """``video.background_image`` as RGB, or None; a missing/unreadable file is a ConfigError."""
    if not cfg.video.background_image:
        return None

    path = Path(cfg.video.background_image).expanduser()
    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if img is None:
        raise ConfigError(
            f"video.background_image: cannot read {path} as a picture.", "give a PNG or JPEG file, or set it to null."
        )
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
