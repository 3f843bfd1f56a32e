"""Camera page: device, size, frame rate, the live output."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from ..page import PREVIEW_H, PREVIEW_W, RATES, SIZES, Page, labelled, live

if TYPE_CHECKING:
    from ..window import SettingsWindow


class CameraPage(Page):
    title = "Camera"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        form = QtWidgets.QFormLayout()
        self.device = labelled(form, "&Camera:", QtWidgets.QComboBox())
        self.size = labelled(form, "Output &size:", QtWidgets.QComboBox())
        for w, h in SIZES:
            self.size.addItem(f"{w} × {h}", f"{w}x{h}")
        self.fps = labelled(form, "&Frame rate:", QtWidgets.QComboBox())
        for r in RATES:
            self.fps.addItem(f"{r} fps", r)
        self.layout_.addLayout(form)
        self.preview = live(QtWidgets.QLabel(objectName="preview"))
        self.preview.setFixedSize(PREVIEW_W, PREVIEW_H)
        self.preview.setAlignment(QtCore.Qt.AlignCenter)
        self.preview.setStyleSheet("background: #202020; color: #dddddd;")
        self.preview.setAccessibleName("What the call sees")
        self.layout_.addWidget(QtWidgets.QLabel("What the call sees (the RAVAS Camera output):"))
        self.layout_.addWidget(self.preview)
        self.state = live(QtWidgets.QLabel())
        self.layout_.addWidget(self.state)
        self.layout_.addStretch(1)
        self.device.activated.connect(self._pick_device)
        self.size.activated.connect(self._pick_size)
        self.fps.activated.connect(lambda i: self.win.set({"video.fps": self.fps.itemData(i)}))
        self.frames_shown = 0

    def _pick_size(self, i: int) -> None:
        w, h = map(int, self.size.itemData(i).split("x"))
        self.win.set({"video.width": w, "video.height": h})

    def _pick_device(self, i: int) -> None:
        kind, value = self.device.itemData(i)
        if kind == "none":
            return
        if kind == "demo":
            self.win.set({"video.source": "demo"})
        else:
            self.win.set({"video.camera": value, "video.source": "auto"})

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        v = st.get("video") or {}
        if st.get("paused"):
            text = "Paused — the call sees the privacy-curtain card, and hears silence."
        elif not v:
            text = "The video stream is off."
        elif v.get("face") is False:
            text = "No face in view — the avatar idles (and its mouth follows your converted voice)."
        elif v.get("state") == "running":
            text = "Live — this is what the call sees."
        else:
            text = f"Video: {v.get('state', 'starting')}."
        self.state.setText(text)
        if full and self.win.connected:
            self._fill_devices()

    def _fill_devices(self) -> None:
        reply = self.win.devices()
        if reply is None:
            return
        cur = reply["current"]
        self.device.clear()
        for cam in reply["devices"].get("cameras", []):
            if cam.get("virtual"):
                continue  # never offer our own output (or another loopback) as the input
            self.device.addItem(f"{cam['name']} ({cam['path'] or cam['index']})", ("camera", cam["index"]))
        if self.device.count() == 0:
            self.device.addItem("No camera found", ("none", None))
            self.device.model().item(0).setEnabled(False)
        self.device.addItem("Built-in demo (no camera)", ("demo", None))
        want = ("demo", None) if cur["video_source"] == "demo" else ("camera", cur["camera"])
        for i in range(self.device.count()):
            if self.device.itemData(i) == want:
                self.device.setCurrentIndex(i)
        st = self.win.status
        idx = self.size.findData("x".join(map(str, st.get("video_size") or (1280, 720))))
        self.size.setCurrentIndex(idx if idx >= 0 else 2)
        idx = self.fps.findData(st.get("video_fps", 30))
        self.fps.setCurrentIndex(idx if idx >= 0 else 2)

    def tick(self) -> None:
        reply = self.win.request("frame", quiet=True, max_width=PREVIEW_W)
        if reply is None:
            self.preview.setText("No picture yet")
            return
        img = QtGui.QImage.fromData(base64.b64decode(reply["image"]), "JPEG")
        self.preview.setPixmap(
            QtGui.QPixmap.fromImage(img).scaled(
                PREVIEW_W, PREVIEW_H, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation
            )
        )
        self.frames_shown += 1
