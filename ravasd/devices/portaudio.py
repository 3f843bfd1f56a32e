"""PortAudio streams as the live audio stages open them: mono, float32, low latency, started."""

from __future__ import annotations

from collections.abc import Callable


def mono_stream(kind: str, device, rate: int, block: int, callback: Callable):
    """A started ``sounddevice`` stream; ``kind`` "input" (the microphone) or "output". ``callback``
    runs on PortAudio's thread, ``block`` samples at ``rate`` Hz per call. Raises what sounddevice
    raises (``PortAudioError``, ``ValueError``): the caller says which device, and the fix."""
    import sounddevice as sd  # PortAudio is a system library: only live devices need it

    cls = sd.InputStream if kind == "input" else sd.OutputStream
    stream = cls(
        device=device, samplerate=rate, blocksize=block, channels=1, dtype="float32", latency="low", callback=callback
    )
    stream.start()
    return stream
