"""Random architectures: uniform samples from any registered search space.

:func:`sample_genotypes` draws ``n`` architectures from one space (its ``draw``) with a
private random generator seeded by ``seed``, so the draws are deterministic for a seed and
do not touch the global random state. Draws are sequential, so the first ``k`` architectures
of ``sample_genotypes(n, seed)`` are those of ``sample_genotypes(k, seed)`` for any ``k <= n``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from robustnas.errors import UsageError
from robustnas.space.spaces import get_space


def sample_genotypes(n: int, seed: int, *, allow_duplicates: bool = False,
                     space: str | None = None) -> list[Any]:
    """Draw ``n`` architectures uniformly from ``space`` (the default space when None).

    Deterministic for ``seed``; no two are equal unless ``allow_duplicates``. Each carries
    provenance ``{"name": "RANDOM_<seed>_<index>", "sampler", "space", "seed", "index"}``
    (``index`` counts from 0 within this call).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UsageError(f"the number of architectures must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"the seed must be an integer, got {seed!r}")
    sampler = get_space(space)
    space = sampler.name
    if not allow_duplicates and n > sampler.size:
        raise UsageError(f"cannot draw {n} distinct architectures: the {space} space has only "
                         f"{sampler.size}")
    rng = random.Random(seed)
    seen: set[Hashable] = set()
    out: list[Any] = []
    while len(out) < n:
        index = len(out)
        provenance = {"name": f"RANDOM_{seed}_{index}", "sampler": sampler.sampler_name,
                      "space": space, "seed": seed, "index": index}
        arch = sampler.draw(rng, provenance)
        if not allow_duplicates:
            if arch in seen:
                continue
            seen.add(arch)
        out.append(arch)
    return out


def sample_to_dir(n: int, seed: int, out: str | Path, *, allow_duplicates: bool = False,
                  space: str | None = None, overwrite: bool = False) -> list[Path]:
    """Draw like :func:`sample_genotypes` and write ``random_<seed>_<index>.json`` files
    into ``out`` (created if needed), plus ``samples.json`` listing them; returns the
    genotype paths in draw order.

    A folder that already holds samples is refused (as ``search`` refuses an existing run),
    unless ``overwrite``: then the earlier samples are removed first, so that no file of a
    larger earlier draw is left looking like part of this one.
    """
    from robustnas.io import atomic_write_text, ensure_writable_dir

    archs = sample_genotypes(n, seed, allow_duplicates=allow_duplicates, space=space)
    sampler = get_space(space)
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
    manifest = {"sampler": sampler.sampler_name, "space": sampler.name, "seed": seed, "n": n,
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
