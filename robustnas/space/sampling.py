"""Random architectures: uniform samplers over a search space, registered by space name.

A space registers a :class:`SpaceSampler` in :data:`SAMPLERS` (the DARTS space, ``"darts"``,
is registered here). :func:`sample_genotypes` draws ``n`` architectures from one space with a
private random generator seeded by ``seed``, so the draws are deterministic for a seed and
do not touch the global random state. Draws are sequential, so the first ``k`` architectures
of ``sample_genotypes(n, seed)`` are those of ``sample_genotypes(k, seed)`` for any ``k <= n``.

DARTS space (Liu et al., 2019): each of the 4 intermediate nodes of a cell takes 2 distinct
inputs among its predecessors (the two cell inputs and the earlier nodes), each through one
of the 7 operations other than ``none``; the normal and the reduction cell are drawn
independently; both concatenate nodes 2..5. Every architecture is equally likely: the input
pair of node ``j`` is uniform over the ``C(j + 2, 2)`` unordered pairs, and each edge's
operation is uniform over the 7 operations. The two edges of a node are stored sorted by
input index, so two draws that differ only in the order of a node's edges (the same network)
compare equal and count as duplicates.
"""

from __future__ import annotations

import importlib
import json
import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustnas.errors import UsageError
from robustnas.registry import Registry
from robustnas.space.genotype import Edge, Genotype, make_genotype, save_genotype
from robustnas.space.ops import PRIMITIVES

#: The operations a sampled DARTS edge can take (every primitive except ``none``).
DARTS_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
#: Intermediate nodes per DARTS cell.
DARTS_STEPS = 4


@dataclass(frozen=True)
class SpaceSampler:
    """How to draw from one search space.

    ``draw(rng, provenance)`` returns one architecture (hashable, equal architectures compare
    equal) carrying ``provenance``; ``size`` is the number of distinct architectures (used to
    refuse more distinct draws than exist); ``save(arch, path)`` writes one as JSON;
    ``name`` is the sampler's name recorded in the provenance.
    """

    name: str
    draw: Callable[[random.Random, dict[str, Any]], Hashable]
    size: int
    save: Callable[[Any, Path], Path]


#: Samplers by space name. Modules listed in :data:`_PLUGINS` are imported on first lookup,
#: so a space living in its own module registers itself there.
SAMPLERS: Registry[SpaceSampler] = Registry("search space")
_PLUGINS: tuple[str, ...] = ("robustnas.space.nb201.sampling_plugin",)


def get_sampler(space: str) -> SpaceSampler:
    """The sampler registered for ``space`` (UsageError listing the spaces otherwise)."""
    for module in _PLUGINS:
        importlib.import_module(module)
    return SAMPLERS.get(space)


def _darts_cell(rng: random.Random, steps: int = DARTS_STEPS) -> list[Edge]:
    """One uniformly random DARTS cell: per node a uniform unordered pair of distinct
    predecessors, each edge with a uniform non-``none`` operation."""
    edges: list[Edge] = []
    for node in range(steps):
        first, second = sorted(rng.sample(range(node + 2), 2))
        edges.append((rng.choice(DARTS_OPS), first))
        edges.append((rng.choice(DARTS_OPS), second))
    return edges


def darts_cell_count(steps: int = DARTS_STEPS, ops: int = len(DARTS_OPS)) -> int:
    """Distinct DARTS cells: the product over nodes of C(j + 2, 2) input pairs × ops²."""
    return math.prod(math.comb(node + 2, 2) * ops * ops for node in range(steps))


def _draw_darts(rng: random.Random, provenance: dict[str, Any]) -> Genotype:
    normal = _darts_cell(rng)
    reduce = _darts_cell(rng)
    concat = list(range(2, 2 + DARTS_STEPS))
    return make_genotype(normal, reduce, concat, concat, provenance=provenance)


def _save_darts(genotype: Genotype, path: Path) -> Path:
    return save_genotype(genotype, path)


SAMPLERS.add("darts", SpaceSampler(name="uniform-darts", draw=_draw_darts,
                                   size=darts_cell_count() ** 2, save=_save_darts))


def sample_genotypes(n: int, seed: int, *, allow_duplicates: bool = False,
                     space: str = "darts") -> list[Any]:
    """Draw ``n`` architectures uniformly from ``space`` (DARTS genotypes by default).

    Deterministic for ``seed``; no two are equal unless ``allow_duplicates``. Each carries
    provenance ``{"name": "RANDOM_<seed>_<index>", "sampler", "space", "seed", "index"}``
    (``index`` counts from 0 within this call).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UsageError(f"the number of architectures must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"the seed must be an integer, got {seed!r}")
    sampler = get_sampler(space)
    if not allow_duplicates and n > sampler.size:
        raise UsageError(f"cannot draw {n} distinct architectures: the {space} space has only "
                         f"{sampler.size}")
    rng = random.Random(seed)
    seen: set[Hashable] = set()
    out: list[Any] = []
    while len(out) < n:
        index = len(out)
        provenance = {"name": f"RANDOM_{seed}_{index}", "sampler": sampler.name,
                      "space": space, "seed": seed, "index": index}
        arch = sampler.draw(rng, provenance)
        if not allow_duplicates:
            if arch in seen:
                continue
            seen.add(arch)
        out.append(arch)
    return out


def sample_to_dir(n: int, seed: int, out: str | Path, *, allow_duplicates: bool = False,
                  space: str = "darts", overwrite: bool = False) -> list[Path]:
    """Draw like :func:`sample_genotypes` and write ``random_<seed>_<index>.json`` files
    into ``out`` (created if needed), plus ``samples.json`` listing them; returns the
    genotype paths in draw order.

    A folder that already holds samples is refused (as ``search`` refuses an existing run),
    unless ``overwrite``: then the earlier samples are removed first, so that no file of a
    larger earlier draw is left looking like part of this one.
    """
    from robustnas.io import atomic_write_text, ensure_writable_dir

    archs = sample_genotypes(n, seed, allow_duplicates=allow_duplicates, space=space)
    sampler = get_sampler(space)
    earlier = _earlier_samples(Path(out))
    if earlier and not overwrite:
        raise UsageError(f"{out} already holds {len(earlier)} sampled file(s) (e.g. "
                         f"{earlier[0].name}); add --overwrite to replace them or choose "
                         f"another --out")
    for old in earlier:
        old.unlink(missing_ok=True)
    directory = ensure_writable_dir(out)
    paths = []
    for index, arch in enumerate(archs):
        paths.append(sampler.save(arch, directory / f"random_{seed}_{index:04d}.json"))
    manifest = {"sampler": sampler.name, "space": space, "seed": seed, "n": n,
                "allow_duplicates": allow_duplicates, "files": [p.name for p in paths]}
    atomic_write_text(directory / "samples.json", json.dumps(manifest, indent=2) + "\n")
    return paths


def _earlier_samples(directory: Path) -> list[Path]:
    """The files an earlier :func:`sample_to_dir` wrote into ``directory`` (manifest last)."""
    if not directory.is_dir():
        return []
    found = sorted(p for p in directory.glob("random_*.json") if p.is_file())
    manifest = directory / "samples.json"
    return found + ([manifest] if manifest.is_file() else [])
