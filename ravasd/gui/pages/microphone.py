"""Microphone page: device, input meter, "Test my voice", RAVAS Mic status."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6 import QtWidgets

from ...devices.virtual import is_microphone
from .. import client
from ..page import Page, labelled, live

if TYPE_CHECKING:
    from ..window import SettingsWindow


class MicrophonePage(Page):
    title = "Microphone"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        form = QtWidgets.QFormLayout()
        self.device = labelled(form, "&Microphone:", QtWidgets.QComboBox())
        self.meter = live(QtWidgets.QProgressBar(objectName="meter"))
        self.meter.setRange(0, 60)
        self.meter.setTextVisible(True)
        labelled(form, "Input &level:", self.meter)
        self.layout_.addLayout(form)
        row = QtWidgets.QHBoxLayout()
        self.test_button = QtWidgets.QPushButton("&Test my voice")
        self.test_button.setToolTip("Records 3 s of what RAVAS Mic sends, then plays it to you")
        self.test_button.clicked.connect(self.test_voice)
        row.addWidget(self.test_button)
        self.test_state = QtWidgets.QLabel("Speak after pressing it: you hear what the call hears.")
        row.addWidget(self.test_state, 1)
        self.layout_.addLayout(row)
        self.mic_state = QtWidgets.QLabel(wordWrap=True)
        self.layout_.addWidget(self.mic_state)
        self.layout_.addStretch(1)
        self.device.activated.connect(self._pick_device)

    def _pick_device(self, i: int) -> None:
        kind, value = self.device.itemData(i)
        if kind == "demo":
            self.win.set({"audio.source": "demo"})
        else:
            self.win.set({"audio.input_device": value, "audio.source": "auto"})

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        mic = st.get("virtual_mic")
        if mic:
            self.mic_state.setText(f"RAVAS Mic is ready: in your call app, choose “{mic}” as the microphone.")
        else:
            why = next((n for n in st.get("notes", []) if n.startswith("virtual mic")), "")
            self.mic_state.setText("RAVAS Mic is not available" + (f": {why}" if why else "."))
        if full and self.win.connected:
            reply = self.win.devices()
            if reply is None:
                return
            cur = reply["current"]
            self.device.clear()
            self.device.addItem("System default", ("default", None))
            for src in (reply["devices"].get("pulse") or {}).get("sources", []):
                name = src["name"]
                if not is_microphone(name):
                    continue
                self.device.addItem(src["description"] or name, ("mic", name))
            self.device.addItem("Built-in demo voice (no microphone)", ("demo", None))
            want = (
                ("demo", None)
                if cur["audio_source"] == "demo"
                else ("mic", cur["input_device"])
                if cur["input_device"] is not None
                else ("default", None)
            )
            for i in range(self.device.count()):
                if self.device.itemData(i) == want:
                    self.device.setCurrentIndex(i)

    def tick(self) -> None:
        reply = self.win.request("level", quiet=True)
        if reply is not None:
            db = max(-60.0, min(0.0, float(reply["mic_db"])))
            self.meter.setValue(int(round(db + 60)))
            self.meter.setFormat(f"{db:.0f} dBFS" if db > -60 else "silence")

    def test_voice(self) -> None:
        if self.win.status.get("paused"):
            self.test_state.setText("RAVAS is paused: the call hears silence, and so will you. Resume first.")
        else:
            self.test_state.setText("Recording 3 s — speak now…")

        def ok(path):
            self.test_state.setText("Playing back what the call heard.")
            self.win.played = _play_wav(Path(path))
            Path(path).unlink(missing_ok=True)

        self.win.run_button(
            self.test_button,
            lambda: client.call("sample", timeout=20.0, seconds=3.0)["path"],
            ok,
            lambda: self.test_state.setText("The test did not work."),
        )


def _play_wav(path: Path) -> np.ndarray:
    """Play a 16-bit mono WAV on the default output (non-blocking); returns its samples."""

    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    play(x, rate)
    return x


def play(x: np.ndarray, rate: int) -> None:
    try:
        import sounddevice as sd  # PortAudio: only needed to play

        sd.play(x, rate)
    except Exception as err:  # no output device: say so, keep the window alive
        QtWidgets.QMessageBox.information(None, "RAVAS", f"Cannot play the sound here: {err}")
