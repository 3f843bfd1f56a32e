"""The manifest of a batch of anonymized files: ``OUTDIR/manifest.jsonl``, one JSON record per
finished file (written by ``ravasd anonymize IN... -o OUTDIR``, read by it to resume and by
``ravasd eval report``). Append-only; the last record of an output path (``rel``) counts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"


def read_manifest(outdir: Path) -> dict[str, dict[str, Any]]:
    """The last record per output path (``rel``); a torn last line (killed mid-write) is ignored."""
    records: dict[str, dict[str, Any]] = {}
    path = outdir / MANIFEST
    if not path.exists():
        return records
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("rel"), str):
                records[rec["rel"]] = rec
    return records


class Manifest:
    """Appends records to ``OUTDIR/manifest.jsonl`` (coordinator only), each line flushed and synced."""

    def __init__(self, outdir: Path) -> None:
        path = outdir / MANIFEST
        torn = False
        if path.exists() and path.stat().st_size:
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
        self.fh = open(path, "a", encoding="utf-8")
        if torn:  # a run killed mid-line: end that line so the next record stands on its own
            self.fh.write("\n")

    def append(self, rec: dict[str, Any]) -> None:
        self.fh.write(json.dumps(rec, sort_keys=True) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()
