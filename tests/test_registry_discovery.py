"""One discovery mechanism (issue 17, item 3): every registry of components finds the
modules of its package itself on first lookup, so a new component is a new file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from robustnas.registry import Registry, discover_modules

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A package ``plugpkg`` on sys.path: a registry discovering it, two modules that register
    themselves, a private module and a subpackage with a ``space`` module."""
    _write(tmp_path / "plugpkg" / "__init__.py", """
        from robustnas.registry import Registry
        THINGS = Registry("thing", discover=("plugpkg",))
        SUBS = Registry("sub thing", discover=("plugpkg.*.space",))
    """)
    _write(tmp_path / "plugpkg" / "alpha.py", """
        from plugpkg import THINGS
        THINGS.add("alpha", 1)
    """)
    _write(tmp_path / "plugpkg" / "beta.py", """
        from plugpkg import THINGS
        THINGS.add("beta", 2)
    """)
    _write(tmp_path / "plugpkg" / "_private.py", "raise RuntimeError('never imported')\n")
    _write(tmp_path / "plugpkg" / "inner" / "__init__.py", "")
    _write(tmp_path / "plugpkg" / "inner" / "space.py", """
        from plugpkg import SUBS
        SUBS.add("inner", 3)
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "plugpkg" or m.startswith("plugpkg.")]:
        del sys.modules[name]


def test_a_registry_finds_the_modules_of_its_package_on_first_lookup(plugin_package):
    import plugpkg

    assert "plugpkg.alpha" not in sys.modules  # importing the registry discovers nothing
    assert plugpkg.THINGS.get("beta") == 2
    assert plugpkg.THINGS.names() == ["alpha", "beta"]  # modules in name order
    assert "plugpkg._private" not in sys.modules
    assert "inner" in plugpkg.SUBS and plugpkg.SUBS.get("inner") == 3


def test_a_new_module_is_found_without_an_import_line(plugin_package):
    import plugpkg

    assert len(plugpkg.THINGS) == 2
    _write(plugin_package / "plugpkg" / "gamma.py", """
        from plugpkg import THINGS
        THINGS.add("gamma", 3)
    """)
    discover_modules("plugpkg")  # what a fresh process's first lookup does
    assert plugpkg.THINGS.get("gamma") == 3


def test_a_failing_module_fails_every_lookup_not_only_the_first(plugin_package):
    _write(plugin_package / "plugpkg" / "broken.py", "raise ImportError('missing extra')\n")
    import plugpkg

    for _ in range(2):
        with pytest.raises(ImportError, match="missing extra"):
            plugpkg.THINGS.names()


# registry (module, attribute) -> the package it discovers
REGISTRIES = {
    ("robustnas.space.spaces", "SPACES"): ("robustnas.space.*.space",),
    ("robustnas.search.regularizers.base", "REGULARIZERS"): ("robustnas.search.regularizers",),
    ("robustnas.train.objectives.base", "OBJECTIVES"): ("robustnas.train.objectives",),
    ("robustnas.attacks.base", "ATTACKS"): ("robustnas.attacks",),
    ("robustnas.data.base", "DATASETS"): ("robustnas.data",),
    ("robustnas.tables.base", "BENCHMARKS"): ("robustnas.tables",),
    ("robustnas.tables.zero_cost.base", "PROXIES"): ("robustnas.tables.zero_cost",),
    ("robustnas.benchmarks", "BENCHMARKS"): ("robustnas.cli.bench_options",),
}


@pytest.mark.parametrize("where", list(REGISTRIES), ids=lambda w: ".".join(w))
def test_each_registry_discovers_its_package(where):
    import importlib

    module, name = where
    registry = getattr(importlib.import_module(module), name)
    assert isinstance(registry, Registry)
    assert registry.patterns == REGISTRIES[where]


def test_registration_does_not_depend_on_the_packages_import_lines():
    """In a fresh process, each registry is complete before anything but its own module has
    been asked for: what registers the components is discovery, not an ``__init__``."""
    code = textwrap.dedent("""
        import sys
        from robustnas.attacks.base import ATTACKS
        from robustnas.data.base import DATASETS
        from robustnas.search.regularizers.base import REGULARIZERS
        from robustnas.train.objectives.base import OBJECTIVES
        from robustnas.tables.base import BENCHMARKS as TABLES
        from robustnas.benchmarks import BENCHMARKS
        found = [m for m in ("robustnas.attacks.standard", "robustnas.data.svhn",
                             "robustnas.search.regularizers.advrush",
                             "robustnas.train.objectives.pgd") if m in sys.modules]
        assert not found, found
        for registry, name in ((ATTACKS, "pgd"), (DATASETS, "svhn"), (REGULARIZERS, "advrush"),
                               (OBJECTIVES, "fgsm-rs"), (BENCHMARKS, "suite")):
            registry.get(name)
        assert set(TABLES.names()) == {"robustness", "nas-robbench-201", "nares"}
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
