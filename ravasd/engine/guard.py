"""The converter guard: one converter instance behind a strict output check.

Used by the live runner's convert thread and by offline ``anonymize`` alike, so both fail closed
the same way: an instance is built on first use; when building fails, ``process`` raises, or it
returns anything but the stream's anonymized type, the instance is closed and dropped, a
:class:`ConverterFailed` says why, and the next call builds a fresh one. The caller publishes a
placeholder instead. Not thread-safe: one guard per convert thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class ConverterFailed(Exception):
    """The converter could not be built (``building``), raised, or returned the wrong type."""

    def __init__(self, message: str, building: bool = False) -> None:
        super().__init__(message)
        self.building = building


class ConverterGuard:
    """Calls ``factory()``'s instance for each item; ``item_type`` is the only output let through."""

    def __init__(self, factory: Callable[[], Any], item_type: type) -> None:
        self.factory = factory
        self.item_type = item_type
        self.instance: Any = None
        self.failures = 0

    def build(self) -> Any:
        """The current instance, built now if there is none (raises what the factory raises)."""
        if self.instance is None:
            self.instance = self.factory()
        return self.instance

    def process(self, item: Any) -> Any:
        """The anonymized output for ``item``; raises :class:`ConverterFailed` otherwise."""
        try:
            conv = self.build()
        except Exception as err:
            self.failures += 1
            raise ConverterFailed(f"{type(err).__name__}: {err}", building=True) from err
        try:
            out = conv.process(item)
        except Exception as err:
            self._discard()
            raise ConverterFailed(f"{type(err).__name__}: {err}") from err
        if type(out) is not self.item_type:  # exact: a raw item (or any other) is never let through
            self._discard()
            raise ConverterFailed(f"converter returned {type(out).__name__}, not {self.item_type.__name__}")
        return out

    def replace(self, factory: Callable[[], Any] | None = None) -> None:
        """Drop the instance (closing it); the next item builds one from ``factory`` (or the same)."""
        self.close()
        if factory is not None:
            self.factory = factory

    def reset(self) -> None:
        """Forget the instance's streaming state (device reopened, resume after pause)."""
        if self.instance is not None:
            quiet(self.instance.reset)

    def close(self) -> None:
        inst, self.instance = self.instance, None
        if inst is not None:
            quiet(inst.close)

    def _discard(self) -> None:
        self.failures += 1
        self.close()


def quiet(fn: Callable[[], Any]) -> None:
    """Call ``fn``; an exception is logged at debug level, never raised (closing, resetting)."""
    try:
        fn()
    except Exception as err:  # closing must never raise into the engine
        log.debug("ignored error: %s", err)
