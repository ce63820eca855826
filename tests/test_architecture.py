"""The package's structure as a test: no import circle, no generic layer that names a
concrete space, and layers that import only downward (read from the source, nothing run).

A package's ``__init__`` that only hands names on is not counted as a node of a circle (as
``farm-studio look`` draws it): importing ``robustnas.space`` does not import its spaces.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "robustnas"

#: Generic layers: they work on every registered space and name none.
GENERIC = ("search", "train", "evaluation", "studies", "monitor", "cli", "engine")
#: The concrete spaces' packages.
SPACES = ("robustnas.space.darts", "robustnas.space.nb201", "robustnas.space.nares")
#: From the bottom up: a layer may import only itself and the layers before it.
LAYERS = (("errors",), ("registry", "lipschitz", "options", "lazy"),
          ("config", "io", "rundir", "checkpoints"),
          ("runtime", "divergence", "distributed", "resume"), ("data", "viz", "attacks"),
          ("space",), ("monitor", "evaluation", "engine"), ("train", "tables"), ("search",),
          ("studies",), ("benchmarks",), ("cli", "__main__"))


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The robustnas modules ``name`` imports anywhere in its body (lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    resolved = set()
    for module in found:
        while module and module not in MODULES:
            module = module.rpartition(".")[0]
        if module and module != name:
            resolved.add(module)
    return resolved


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}
FACES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _layer(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else None  # None: the package's face
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    return None


def test_every_module_has_a_layer():
    tops = {name.split(".")[1] for name in MODULES if "." in name}
    assert tops == {top for names in LAYERS for top in names}


def test_no_import_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v] - FACES:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(set(GRAPH) - FACES):
        if v not in index:
            visit(v)
    assert circles == []


@pytest.mark.parametrize("layer", GENERIC)
def test_generic_layers_name_no_space(layer):
    offenders = {name: sorted(m for m in imported if m.startswith(SPACES))
                 for name, imported in GRAPH.items()
                 if name.startswith(f"robustnas.{layer}")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_imports_run_downward():
    upward = []
    for name, imported in GRAPH.items():
        mine = _layer(name)
        for module in imported:
            theirs = _layer(module)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{name} -> {module}")
    assert upward == []
