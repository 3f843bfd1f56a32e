"""espeak-ng through its C library: speech and the phonemes it spoke, with their sample positions.

The command-line ``espeak-ng`` prints phonemes or writes audio, never both with timing; the library
reports a phoneme event (IPA, ``espeakINITIALIZE_PHONEME_IPA``) at the sample where each phoneme
starts. Used to label training and test speech: an espeak-ng speaker's utterance gets its exact
phone alignment, and any text gets its canonical phone sequence as espeak-ng's ``en-us`` voice
realises it (flaps, r-coloured vowels and all). Not thread-safe (the library is a singleton): call
from one thread per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import RavasError

_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS
_PHONEME_EVENTS = 0x0001  # espeakINITIALIZE_PHONEME_EVENTS
_PHONEME_IPA = 0x0002  # espeakINITIALIZE_PHONEME_IPA
_EVENT_END, _EVENT_PHONEME = 0, 7
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_POS_CHARACTER = 1
#: espeak-ng's English voice files by language (``espeak-ng --voices=en``): the library finds a
#: ``lang+variant`` voice by its file name, not by every language code the command line accepts.
FILES = {
    "en-us": "gmw/en-US",
    "en-gb": "gmw/en",
    "en-gb-scotland": "gmw/en-GB-scotland",
    "en-gb-x-gbclan": "gmw/en-GB-x-gbclan",
    "en-gb-x-rp": "gmw/en-GB-x-rp",
    "en-gb-x-gbcwmd": "gmw/en-GB-x-gbcwmd",
    "en-029": "gmw/en-029",
    "en-us-nyc": "gmw/en-US-nyc",
}


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Spoken:
    """An utterance espeak-ng spoke: int16-range float32 samples at ``rate`` and its phones (IPA,
    no stress marks) with the sample each starts at, ascending."""

    audio: np.ndarray
    rate: int
    phones: list[tuple[str, int]]


class Espeak:
    """The espeak-ng library, initialised once per process."""

    _lib = None
    _rate = 0
    _variants = Path()

    def __init__(self) -> None:
        if Espeak._lib is None:
            name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                raise RavasError(
                    "the espeak-ng library (libespeak-ng.so.1) is not installed; it speaks and labels "
                    "the phonetic corpus.",
                    "install it (Debian: apt install espeak-ng).",
                ) from None
            Espeak._rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS | _PHONEME_IPA)
            if Espeak._rate <= 0:
                raise RavasError(
                    "espeak-ng could not start (its data folder is missing?).", "reinstall espeak-ng-data."
                )
            data = ctypes.c_char_p()
            lib.espeak_Info.restype = ctypes.c_char_p
            lib.espeak_Info(ctypes.byref(data))
            Espeak._variants = Path(data.value.decode()) / "voices" / "!v"
            Espeak._lib = lib
        self._chunks: list[np.ndarray] = []
        self._phones: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._collect)  # kept alive: the library holds only the pointer

    def _collect(self, wav, n, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).astype(np.float32))
        i = 0
        while events[i].type != _EVENT_END:
            if events[i].type == _EVENT_PHONEME:
                name = events[i].id.string.decode("utf-8", "replace")
                if name:
                    self._phones.append((name, int(events[i].sample)))
            i += 1
        return 0

    def speak(self, text: str, voice: str = "en-us", rate_wpm: int = 170, pitch: int = 50) -> Spoken:
        """Speak ``text`` in ``voice`` (``lang+variant``); ``pitch`` 0–100."""
        lib = Espeak._lib
        lang, _, variant = voice.partition("+")
        name = FILES.get(lang, lang) + (f"+{variant}" if variant else "")
        # the library falls back to the bare language for a variant it lacks: look first
        if (variant and not (Espeak._variants / variant).is_file()) or lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise RavasError(f"espeak-ng has no voice {voice!r}.", "list them with: espeak-ng --voices")
        lib.espeak_SetParameter(_RATE, int(rate_wpm), 0)
        lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        lib.espeak_SetSynthCallback(self._callback)
        self._chunks, self._phones = [], []
        data = text.encode()
        lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        return Spoken(audio / 32768.0, Espeak._rate, list(self._phones))

    def phones(self, text: str) -> list[str]:
        """``text``'s canonical phones: what espeak-ng's ``en-us`` voice speaks for it."""
        return [p for p, _ in self.speak(text, "en-us").phones]
