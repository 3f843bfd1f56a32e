"""File kinds by extension, in one place: the recordings RAVAS reads and the files it writes."""

from __future__ import annotations

#: Containers RAVAS writes: extension → FFmpeg's format name.
VIDEO_OUT = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
AUDIO_OUT = {".wav": "wav", ".flac": "flac"}
#: Pictures ``ravasd render`` writes.
PICTURE_OUT = (".png", ".jpg")
#: Recordings looked for in folders (anything FFmpeg decodes is read when named directly).
VIDEO_IN = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v"})
AUDIO_IN = frozenset({".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus"})
