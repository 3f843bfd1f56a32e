"""Voice page: each voice with its latency and measured figures, a sample."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6 import QtWidgets

from ...audio.voices import VOICES, figures, latency_ms
from ...audio.voices import neural as neural_voices
from ...evaluation.sample import voice_sample
from ..page import Page
from .microphone import play

if TYPE_CHECKING:
    from ..window import SettingsWindow


class VoicePage(Page):
    title = "Voice"
    COLUMNS = ("Voice", "Latency", "Words lost", "Disguise (EER)", "Description")

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        # the built-in voices, then the neural voices usable now (`ravasd voices list` shows the others)
        entries = [(v.name, v.description) for v in VOICES.values()] + [
            (n, nv.description) for n, nv in neural_voices(win.cfg).items() if nv.available
        ]
        self.table = QtWidgets.QTableWidget(len(entries), len(self.COLUMNS), objectName="voices")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setAccessibleName("Voices")
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        measured = figures.load()
        for row, (name, desc) in enumerate(entries):
            f = figures.summary(name, measured)
            wer = "–" if f["wer_increase_points"] is None else f"+{f['wer_increase_points']:.1f} pts"
            eer = "–" if f["eer_lazy_informed"] is None else f"{f['eer_lazy_informed']:.0f} %"
            cells = (name, "…", wer, eer, desc)  # latency filled in by a worker thread
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(desc if col == 4 else text)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(1, 70)
        self.table.setColumnWidth(4, 320)
        self.latencies_done = threading.Event()
        cfg = win.cfg  # the configured rate and block size: the latency the daemon would add
        # live: a neural voice's latency includes its compute margin, as the daemon runs it
        win.run_async(lambda: {name: latency_ms(cfg, name, live=True) for name, _ in entries}, self._show_latencies)
        self.layout_.addWidget(self.table, 1)
        note = QtWidgets.QLabel(
            "Words lost: extra word errors of a speech recogniser on the converted voice. "
            "Disguise: how often a speaker-recognition attacker who knows the voice "
            "confuses speakers (50 % = pure chance). Measured by `ravasd eval voice`.",
            wordWrap=True,
        )
        self.layout_.addWidget(note)
        row = QtWidgets.QHBoxLayout()
        self.sample_button = QtWidgets.QPushButton("&Play sample")
        self.sample_button.clicked.connect(self.play_sample)
        self.use_button = QtWidgets.QPushButton("&Use this voice")
        self.use_button.clicked.connect(self.use_voice)
        row.addWidget(self.sample_button)
        row.addWidget(self.use_button)
        self.current = QtWidgets.QLabel()
        row.addWidget(self.current, 1)
        self.layout_.addLayout(row)

    def _show_latencies(self, latencies, err) -> None:
        for row in range(self.table.rowCount()):
            ms = (latencies or {}).get(self.table.item(row, 0).text())
            self.table.item(row, 1).setText("?" if ms is None or ms != ms else f"{ms:.1f} ms")
        self.latencies_done.set()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        voice = st.get("voice")
        self.current.setText(f"In use: <b>{voice}</b>" if voice else "")
        if full and voice and self.selected() is None:
            for r in range(self.table.rowCount()):
                if self.table.item(r, 0).text() == voice:
                    self.table.selectRow(r)

    def use_voice(self) -> None:
        name = self.selected()
        if name and self.win.request("voice", name=name) is not None:
            self.win.refresh(full=True)

    def play_sample(self) -> None:
        name = self.selected()
        if not name:
            return

        def ok(x):
            self.win.played = x
            play(x, 48000)

        cfg = self.win.cfg
        self.win.run_button(self.sample_button, lambda: voice_sample(name, cfg=cfg), ok)
