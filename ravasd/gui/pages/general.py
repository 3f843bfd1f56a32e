"""General page: start at login, pause, where files live, the doctor's checks."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from ... import config as config_mod
from ... import paths
from ...daemon import autostart
from ...daemon.tray import open_path
from ...errors import RavasError
from ..page import Page, home, live, load_or_default

if TYPE_CHECKING:
    from ..window import SettingsWindow


class GeneralPage(Page):
    title = "General"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        self.autostart = QtWidgets.QCheckBox("Start RAVAS when I &log in")
        self.autostart.toggled.connect(self._autostart)
        self.pause = QtWidgets.QCheckBox("&Pause — close the privacy curtain (card and silence)")
        self.pause.toggled.connect(self._pause)
        self.layout_.addWidget(self.autostart)
        self.layout_.addWidget(self.pause)
        grid = QtWidgets.QGridLayout()
        for r, (what, where, folder) in enumerate(
            (("Settings file", paths.config_file(), False), ("Log folder", paths.log_dir(), True))
        ):
            grid.addWidget(QtWidgets.QLabel(f"{what}:"), r, 0)
            label = live(QtWidgets.QLabel(home(where)))  # per-user paths
            label.setToolTip(str(where))
            # a long path must not widen the window: it is cut, the tooltip has it whole
            label.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
            label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
            grid.addWidget(label, r, 1)
            button = QtWidgets.QPushButton("Open")
            button.setAccessibleName(f"Open {what.lower()}")
            button.clicked.connect(lambda _=False, p=where, d=folder: self._open(p, d))
            grid.addWidget(button, r, 2)
        grid.setColumnStretch(1, 1)
        self.layout_.addLayout(grid)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(QtWidgets.QLabel("<b>Checks</b> (what `ravasd doctor` finds on this computer)"), 1)
        self.check_button = QtWidgets.QPushButton("&Check again")
        self.check_button.clicked.connect(self.run_checks)
        head.addWidget(self.check_button)
        self.layout_.addLayout(head)
        self.checks = live(QtWidgets.QTreeWidget(objectName="checks"))  # this computer's findings
        self.checks.setHeaderLabels(("Part", "", "What was found, and the fix"))
        self.checks.setRootIsDecorated(False)
        self.checks.setWordWrap(True)
        self.checks.setAccessibleName("Checks")
        self.layout_.addWidget(self.checks, 1)
        self.checks_done = threading.Event()
        self._syncing = False
        self.run_checks()

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        self._syncing = True
        try:
            self.pause.setEnabled(bool(st))
            self.pause.setChecked(bool(st.get("paused")))
            if full:
                self.autostart.setChecked(bool(autostart.status()["enabled"]))
        finally:
            self._syncing = False

    def _pause(self, on: bool) -> None:
        if not self._syncing:
            self.win.request("pause" if on else "resume")
            self.win.refresh(full=True)

    def _autostart(self, on: bool) -> None:
        if self._syncing:
            return
        try:
            autostart.enable() if on else autostart.disable()
        except RavasError as err:
            QtWidgets.QMessageBox.warning(self, "RAVAS", str(err))

    def _open(self, path: Path, folder: bool) -> None:
        if folder:
            path.mkdir(parents=True, exist_ok=True)
        elif path == paths.config_file():
            config_mod.ensure_file()
        self.win.opened = [*getattr(self.win, "opened", []), str(path)]
        if not getattr(self.win, "no_open", False):
            open_path(path)

    def run_checks(self) -> None:
        from ...daemon.doctor import run_checks

        self.checks_done.clear()
        self.check_button.setEnabled(False)

        def done(checks, err):
            self.check_button.setEnabled(True)
            self.checks.clear()
            if err is not None:
                self.checks.addTopLevelItem(QtWidgets.QTreeWidgetItem(("checks", "error", str(err))))
            for c in checks or []:
                text = c.detail + (f"\nFix: {c.fix}" if c.fix and c.status != "ok" else "")
                item = QtWidgets.QTreeWidgetItem((c.name, c.status.upper(), text))
                item.setForeground(
                    1, QtGui.QColor({"ok": "#2e7d32", "warn": "#b26a00", "fail": "#c62828"}.get(c.status, "#555555"))
                )
                self.checks.addTopLevelItem(item)
            self.checks.resizeColumnToContents(0)
            self.checks.resizeColumnToContents(1)
            self.checks_done.set()

        self.win.run_async(lambda: run_checks(load_or_default()), done)
