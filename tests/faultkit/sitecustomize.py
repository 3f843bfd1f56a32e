"""Installs the fault kit (``faultkit.py``) at interpreter start in processes that name a kit folder
in RAVAS_FAULTKIT: the daemon under test and its workers."""

import os

if os.environ.get("RAVAS_FAULTKIT"):
    import faultkit  # noqa: F401 (installs on import)
