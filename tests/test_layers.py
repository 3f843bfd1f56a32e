"""The package's layers import down only: read from the code's imports (top-level and nested).

Lowest first; a module may import its own layer's modules and any lower layer. ``audio`` and
``video`` are one layer but never import each other (each stream stands alone), and nothing inside
the package reads the checkout: bundled files go through ``ravasd.assets``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "ravasd"

LAYERS = [
    {"ravasd", "ravasd.errors", "ravasd.paths", "ravasd.assets", "ravasd.config", "ravasd.logs", "ravasd.model_files"},
    {"ravasd.engine", "ravasd.devices"},
    {"ravasd.media"},
    {"ravasd.audio", "ravasd.video"},
    {"ravasd.name_checks", "ravasd.evaluation"},
    {"ravasd.wiring"},
    {"ravasd.daemon"},
    {"ravasd.gui"},
    {"ravasd.research", "ravasd.bench"},
    {"ravasd.cli", "ravasd.__main__"},
]
APART = [("ravasd.audio", "ravasd.video")]


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _group(module: str) -> str:
    """The layer entry a module belongs to: the longest listed prefix."""
    best = ""
    for layer in LAYERS:
        for name in layer:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best = name
    assert best, f"{module} is in no layer: add it to LAYERS"
    return best


def _level(group: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if group in layer)


def _nodes(tree: ast.AST, runtime_only: bool):
    """Every node of ``tree``; with ``runtime_only``, none under ``if TYPE_CHECKING:`` (annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if runtime_only and isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports(path: Path, runtime_only: bool = False) -> set[str]:
    """The ravasd modules ``path`` imports, resolved (relative imports included); ``runtime_only``:
    leave out the imports made for type annotations only."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found = set()
    for node in _nodes(ast.parse(path.read_text()), runtime_only):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ravasd"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ravasd":
                continue
            found.add(target)
            for a in node.names:  # `from . import config` names a module
                if (PKG.parent / (target.replace(".", "/") + "/" + a.name + ".py")).exists():
                    found.add(f"{target}.{a.name}")
    return found


def violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        src = _group(_module(path))
        for target in sorted(imports(path)):
            dst = _group(target)
            if _level(dst) > _level(src):
                bad.append(f"{_module(path)} imports {target} (layer {_level(dst)} above {_level(src)})")
            if (src, dst) in APART or (dst, src) in APART:
                bad.append(f"{_module(path)} imports {target} ({src} and {dst} stay apart)")
    return bad


def test_layers_import_down_only():
    assert violations() == []


def test_engine_and_devices_import_nothing_above_them():
    """The two bottom layers, spelled out: only themselves and the base modules."""
    base = LAYERS[0]
    for path in sorted((PKG / "engine").rglob("*.py")) + sorted((PKG / "devices").rglob("*.py")):
        own = _group(_module(path))
        for target in imports(path):
            assert _group(target) in base | {own}, f"{_module(path)} imports {target}"


def test_the_checker_sees_a_wrong_door(tmp_path, monkeypatch):
    """The check can fail: an engine module importing the wiring is reported."""
    fake = PKG / "engine" / "_layer_probe.py"
    fake.write_text("from .. import wiring\nfrom ..video.sinks import NullVideoSink\n")
    try:
        bad = violations()
    finally:
        fake.unlink()
    assert any("ravasd.engine._layer_probe imports ravasd.wiring" in b for b in bad)
    assert any("ravasd.engine._layer_probe imports ravasd.video.sinks" in b for b in bad)


def cycles() -> list[list[str]]:
    """Groups of ravasd modules that import each other round (top-level or nested imports; a module's
    own parent packages, imported before it anyway, and imports for type annotations only do not count)."""
    graph = {}
    for path in sorted(PKG.rglob("*.py")):
        mod = _module(path)
        graph[mod] = {t for t in imports(path, runtime_only=True) if t != mod and not mod.startswith(t + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert cycles() == []


def test_the_cycle_check_sees_a_cycle():
    a, b = PKG / "research" / "_cycle_a.py", PKG / "research" / "_cycle_b.py"
    a.write_text("def f():\n    from . import _cycle_b\n")
    b.write_text("from ._cycle_a import f\n")
    try:
        found = cycles()
    finally:
        a.unlink()
        b.unlink()
    assert ["ravasd.research._cycle_a", "ravasd.research._cycle_b"] in found


def test_no_module_reads_the_checkout():
    """Run-time files come through importlib.resources (ravasd.assets), never paths above the package."""
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text()
        assert ".parents[" not in text, f"{path.relative_to(PKG)} climbs out of the package"
