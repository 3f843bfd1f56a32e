"""Avatar page: gallery, add, background, calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from ...errors import RavasError
from ...video.avatar import library
from ...video.avatar.thumbnail import thumbnail as avatar_thumbnail
from ...video.converters import VIDEO_CONVERTERS, video_choices
from ..page import THUMB_H, THUMB_W, Page

if TYPE_CHECKING:
    from ..window import SettingsWindow


class AvatarPage(Page):
    title = "Avatar"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        self.gallery = QtWidgets.QListWidget(objectName="gallery")
        self.gallery.setViewMode(QtWidgets.QListView.IconMode)
        self.gallery.setIconSize(QtCore.QSize(THUMB_W, THUMB_H))
        self.gallery.setResizeMode(QtWidgets.QListView.Adjust)
        self.gallery.setMovement(QtWidgets.QListView.Static)
        self.gallery.setSpacing(6)
        self.gallery.setAccessibleName("Avatars")
        self.gallery.itemActivated.connect(self._pick)
        self.gallery.itemClicked.connect(self._pick)
        self.layout_.addWidget(self.gallery, 1)
        self.info = QtWidgets.QLabel(wordWrap=True)
        self.layout_.addWidget(self.info)
        row = QtWidgets.QHBoxLayout()
        self.add_button = QtWidgets.QPushButton("&Add avatar…")
        self.add_button.clicked.connect(self.add_avatar)
        self.colour_button = QtWidgets.QPushButton("Background &colour…")
        self.colour_button.clicked.connect(self.pick_colour)
        self.picture_button = QtWidgets.QPushButton("Background &picture…")
        self.picture_button.clicked.connect(self.pick_picture)
        self.no_picture_button = QtWidgets.QPushButton("&No picture")
        self.no_picture_button.clicked.connect(lambda: self.win.set({"video.background_image": None}))
        self.calibrate_button = QtWidgets.QPushButton("Ca&librate face")
        self.calibrate_button.setToolTip("Look at the camera with a relaxed face, then press")
        self.calibrate_button.clicked.connect(self.calibrate)
        for b in (
            self.add_button,
            self.colour_button,
            self.picture_button,
            self.no_picture_button,
            self.calibrate_button,
        ):
            row.addWidget(b)
        row.addStretch(1)
        self.layout_.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.framing = QtWidgets.QComboBox(objectName="framing")
        for value, text in (("close", "Close (face)"), ("bust", "Head and shoulders"), ("wide", "Wide")):
            self.framing.addItem(text, value)
        self.framing.setAccessibleName("Framing")
        label = QtWidgets.QLabel("F&raming:")
        label.setBuddy(self.framing)
        row.addWidget(label)
        row.addWidget(self.framing)
        row.addStretch(1)
        self.framing.activated.connect(lambda i: self.win.set({"video.framing": self.framing.itemData(i)}))
        self.layout_.addLayout(row)
        self._names: list[str] = []

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        current = st.get("avatar") if st.get("video_converter") == "avatar" else st.get("video_converter")
        names = video_choices()
        if names != self._names:
            self._names = names
            self.gallery.clear()
            for name in names:
                item = QtWidgets.QListWidgetItem(QtGui.QIcon(thumbnail(name)), name)
                item.setData(QtCore.Qt.UserRole, name)
                item.setToolTip(name)
                self.gallery.addItem(item)
        for i in range(self.gallery.count()):
            item = self.gallery.item(i)
            chosen = item.data(QtCore.Qt.UserRole) == current
            item.setSelected(chosen)
            f = item.font()
            f.setBold(chosen)
            item.setFont(f)
        if full and current:
            self.info.setText(_avatar_info(current))
        i = self.framing.findData(st.get("framing", "bust"))
        if i >= 0 and i != self.framing.currentIndex():
            self.framing.setCurrentIndex(i)

    def _pick(self, item: QtWidgets.QListWidgetItem) -> None:
        name = item.data(QtCore.Qt.UserRole)
        if self.win.request("avatar", name=name) is not None:
            self.win.refresh(full=True)

    def add_avatar(self, path: str | None = None) -> None:
        if not path:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Add an avatar", str(Path.home()), "Avatars (*.glb *.vrm)"
            )
        if not path:
            return
        try:
            from ...video.avatar.model import load_avatar

            m = load_avatar(Path(path))
            meta = m.meta
            text = (
                f"<b>{meta.get('title') or Path(path).stem}</b> by {meta.get('author') or 'unknown'}<br>"
                f"Licence: {meta.get('licence') or 'not stated — make sure you may use it'}<br>"
                f"Face expressions: {len(m.arkit_coverage())} of 52 ARKit shapes"
            )
        except RavasError as err:
            QtWidgets.QMessageBox.warning(self, "RAVAS — this avatar cannot be used", str(err))
            return
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Question,
            "Add this avatar?",
            text,
            QtWidgets.QMessageBox.Ok | QtWidgets.QMessageBox.Cancel,
            self,
        )
        box.setObjectName("confirm-add")
        if getattr(self.win, "auto_confirm", False):
            box.setStandardButtons(QtWidgets.QMessageBox.Ok)
            QtCore.QTimer.singleShot(0, box.accept)
        if box.exec() not in (QtWidgets.QMessageBox.Ok, QtWidgets.QDialog.Accepted):
            return
        try:
            dest = library.add(path)
        except RavasError as err:
            QtWidgets.QMessageBox.warning(self, "RAVAS", str(err))
            return
        self.win.statusBar().showMessage(f"Added {dest.stem}.", 4000)
        self.win.refresh(full=True)

    def pick_colour(self) -> None:
        start = QtGui.QColor(self.win.status.get("background") or "#8cacc4")
        colour = QtWidgets.QColorDialog.getColor(start, self, "Background colour")
        if colour.isValid():
            self.win.set({"video.background": colour.name()})

    def pick_picture(self, path: str | None = None) -> None:
        if not path:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Background picture", str(Path.home()), "Pictures (*.png *.jpg *.jpeg)"
            )
        if path:
            self.win.set({"video.background_image": str(path)})

    def calibrate(self) -> None:
        if self.win.request("calibrate") is not None:
            self.win.statusBar().showMessage("Calibrated: your relaxed face is the avatar's neutral face.", 4000)


def _avatar_info(name: str) -> str:
    if name in VIDEO_CONVERTERS:
        return {
            "facemask": "Face mask: your head shape is kept, your face is replaced by a mask.",
            "card": "Card: a still card instead of any picture of you.",
        }.get(name, name)
    try:
        info = library.describe(name, library.find(name))
    except RavasError as err:
        return str(err)
    if info.error:
        return info.error
    who = info.author or "unknown"
    licence = "" if info.licence and info.licence in who else f" · licence {info.licence or 'not stated'}"
    return f"{info.title or name} — by {who}{licence} · {info.coverage} of 52 face expressions"


def thumbnail(name: str) -> QtGui.QPixmap:
    """The gallery picture of ``name``: the bundled preview or a cached render
    (:func:`ravasd.video.avatar.thumbnail.thumbnail`), else a drawn tile (converters, broken files)."""
    pix = QtGui.QPixmap(THUMB_W, THUMB_H)
    path = None if name in VIDEO_CONVERTERS else avatar_thumbnail(name)
    if path is not None and pix.load(str(path)):
        return pix.scaled(THUMB_W, THUMB_H, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation)
    pix = QtGui.QPixmap(THUMB_W, THUMB_H)
    pix.fill(QtGui.QColor("#5a6b7a"))
    p = QtGui.QPainter(pix)
    p.setPen(QtGui.QColor("white"))
    p.drawText(pix.rect(), QtCore.Qt.AlignCenter, name)
    p.end()
    return pix
