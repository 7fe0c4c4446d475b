"""The package's layers import one way, as DESIGN.md draws them: core, then codecs, stores, datasets, then loader
and convert, then report; each module imports only its own layer and those before it, no chapter of the report
imports another, and no module imports, directly or through others, one that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "helpers"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports anywhere in its code (imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            # "from helpers.stores import base" names a module; "from helpers import space" too
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != "helpers":
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(path) for path in paths}
    graph = {module_name(path): imports_of(path, known) for path in paths}
    for name, targets in graph.items():
        targets.discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


#: Each layer may import itself and the layers before it in this list (loader and convert are one layer).
LAYERS = (
    ("helpers.core",),
    ("helpers.codecs",),
    ("helpers.stores",),
    ("helpers.datasets",),
    ("helpers.loader", "helpers.convert"),
    ("helpers.report",),
)
CHAPTERS = "helpers.report.chapters"


def layer_of(module: str) -> int | None:
    """The position of ``module``'s layer in LAYERS; None for the package itself (it re-exports core)."""
    for position, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return position
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_belongs_to_a_layer():
    assert [module for module in import_graph() if layer_of(module) is None] == ["helpers"]


def test_each_layer_imports_only_itself_and_the_layers_before_it():
    upward = [
        f"{module} imports {target}"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(module) is not None and layer_of(target) is not None and layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_the_package_itself_imports_only_core():
    assert {layer_of(target) for target in import_graph()["helpers"]} <= {0}


def test_no_chapter_imports_another_and_only_chapters_import_chapters():
    graph = import_graph()
    crossing = [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if target.startswith(CHAPTERS + ".") and module != target
        and not target.startswith(module + ".")  # a chapter package may hold modules of its own
        and not module.startswith(target + ".")
    ]
    assert not crossing, "chapters are the top of the report; none imports another:\n" + "\n".join(crossing)


def test_the_layer_check_finds_an_upward_import():
    assert layer_of("helpers.core.space") < layer_of("helpers.stores.base") < layer_of("helpers.report.results")
    assert layer_of("helpers.loader") == layer_of("helpers.convert")


def test_space_does_not_know_the_stores():
    graph = import_graph()
    assert not {name for name in graph["helpers.core.space"] if name.startswith("helpers.stores")}
    assert "helpers.core.space" in graph["helpers.stores.base"]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
