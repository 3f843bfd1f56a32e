"""A small seeded mutation fuzzer for the loaders' tests (test_hostile_input.py).

Structured mutations replace, delete or duplicate parts of a valid document (JSON-like trees) with
hostile values — wrong types, huge and non-finite numbers, long strings, deep nesting — and byte
mutations flip, cut, repeat and splice a valid file. Everything comes from ``random.Random(seed)``,
so a failing case is reproduced by its seed and index.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any


def _deep(depth: int, kind: str = "list") -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v] if kind == "list" else {"a": v}
    return v


def hostile_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -1,
            1,
            2**31,
            -(2**63),
            2**200,
            1e308,
            -1e308,
            0.5,
            float("nan"),
            float("inf"),
            "",
            "x",
            "é\u202e\x00",
            "a" * 5000,
            [],
            {},
            [1, 2, 3],
            [[1], [2]],
            {"a": 1},
            [None] * 20,
            {"": None},
            _deep(rng.choice([50, 400])),
            _deep(rng.choice([50, 400]), "dict"),
            list(range(100)),
            {"index": -5},
            "../../etc/passwd",
        ]
    )


def _paths(tree: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree[:50]):  # long arrays: their head is enough
            yield from _paths(v, prefix + (i,))


def mutate_tree(doc: Any, rng: random.Random, n: int | None = None) -> Any:
    """A deep copy of ``doc`` with 1–4 hostile edits (replace, delete, insert, duplicate)."""
    out = copy.deepcopy(doc)
    for _ in range(n or rng.randint(1, 4)):
        paths = list(_paths(out))
        path = rng.choice(paths)
        if not path:
            if rng.random() < 0.3:
                return hostile_value(rng)
            continue
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = rng.random()
        if op < 0.55:
            parent[key] = hostile_value(rng)
        elif op < 0.75:
            del parent[key]
        elif op < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["extra", "x" * 30, "", "__proto__"])] = hostile_value(rng)
        elif isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(parent[key]))
        else:
            parent[key] = copy.deepcopy(parent)  # self-similar: doubles the structure once
    return out


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """``data`` with 1–6 byte-level edits: flips, cuts, repeats, random runs, splices of itself."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not b:
            b = bytearray(rng.randbytes(rng.randint(0, 64)))
            continue
        op = rng.random()
        i = rng.randrange(len(b))
        if op < 0.35:
            for _ in range(rng.randint(1, 16)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.5:
            del b[rng.randrange(len(b)) :]
        elif op < 0.65:
            j = min(len(b), i + rng.randint(1, 256))
            b[i:i] = b[i:j] * rng.randint(1, 8)
        elif op < 0.8:
            b[i:i] = rng.randbytes(rng.randint(1, 128))
        elif op < 0.9:
            b[i : i + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f", b"\x01\x00\x00\x80"]
            )
        else:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 512)]
    return bytes(b)


def dumps(doc: Any) -> str:
    """JSON text of a mutated tree (NaN/Infinity as JSON's parsers accept them)."""
    return json.dumps(doc)
