"""Genotypes: the discrete cells found by a search, their JSON form and validation.

A genotype holds, for the normal and the reduction cell, two ``(op, input)`` pairs per
intermediate node. States are numbered once, the same way in the JSON, the cell pictures,
the α heatmaps and error messages: 0 and 1 are the cell's inputs ``c_{k-2}`` and
``c_{k-1}``, 2, 3, ... the intermediate nodes in order (the ``i``-th pair of edges feeds
node ``i + 2``), and ``concat`` lists the states the output concatenates. The JSON file is
versioned and carries the provenance of the search that produced it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustnas.errors import GenotypeError
from robustnas.space.darts.ops import PRIMITIVES

GENOTYPE_FORMAT = "robustnas-genotype"
GENOTYPE_VERSION = 1
#: Most intermediate nodes per cell accepted (DARTS uses 4; the limit keeps a hostile file
#: from building a network that takes minutes and gigabytes).
MAX_NODES = 64

Edge = tuple[str, int]


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype. ``normal``/``reduce`` list ``(op, input)`` pairs, 2 per node."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def steps(self) -> int:
        """Number of intermediate nodes per cell."""
        return len(self.normal) // 2

    def count(self, op: str, cell: str = "normal") -> int:
        """How many edges of ``cell`` ("normal", "reduce" or "both") use ``op``."""
        edges = {"normal": self.normal, "reduce": self.reduce,
                 "both": self.normal + self.reduce}[cell]
        return sum(1 for name, _ in edges if name == op)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON-ready form."""
        return {
            "format": GENOTYPE_FORMAT,
            "version": GENOTYPE_VERSION,
            "normal": [[op, idx] for op, idx in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, idx] for op, idx in self.reduce],
            "reduce_concat": list(self.reduce_concat),
            "provenance": dict(self.provenance),
        }

    def describe(self) -> str:
        """A compact one-line text form, as used by the original DARTS code."""
        def cell(edges: Sequence[Edge], concat: Sequence[int]) -> str:
            return "[" + ", ".join(f"({op}, {i})" for op, i in edges) + f"] concat={list(concat)}"
        return (f"normal={cell(self.normal, self.normal_concat)} "
                f"reduce={cell(self.reduce, self.reduce_concat)}")


def make_genotype(normal: Sequence[Sequence[Any]], reduce: Sequence[Sequence[Any]],
                  normal_concat: Sequence[int] | None = None,
                  reduce_concat: Sequence[int] | None = None,
                  provenance: Mapping[str, Any] | None = None) -> Genotype:
    """Build and validate a :class:`Genotype` from plain lists."""
    steps = len(normal) // 2
    if max(steps, len(reduce) // 2) > MAX_NODES:
        raise GenotypeError(f"a cell has {max(steps, len(reduce) // 2)} nodes; at most "
                            f"{MAX_NODES} nodes per cell are accepted")
    default_concat = tuple(range(2, 2 + steps))
    geno = Genotype(
        normal=tuple((str(op), _integer(i, "input index")) for op, i in normal),
        normal_concat=(tuple(_integer(c, "normal_concat entry") for c in normal_concat)
                       if normal_concat is not None else default_concat),
        reduce=tuple((str(op), _integer(i, "input index")) for op, i in reduce),
        reduce_concat=(tuple(_integer(c, "reduce_concat entry") for c in reduce_concat)
                       if reduce_concat is not None else default_concat),
        provenance=dict(provenance or {}),
    )
    validate(geno)
    return geno


def _integer(value: Any, what: str) -> int:
    """``value`` as an int if it is an integer type (also NumPy/torch); 2.7 or "2" are refused."""
    if isinstance(value, bool):
        raise GenotypeError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise GenotypeError(f"{what} must be an integer, got {value!r}") from None


def validate(geno: Genotype) -> None:
    """Check op names, input indices, edge counts and concat lists; raise GenotypeError."""
    if len(geno.normal) != len(geno.reduce):
        raise GenotypeError(
            f"normal cell has {len(geno.normal)} edges but reduction cell has {len(geno.reduce)}")
    for cell_name, edges, concat in (("normal", geno.normal, geno.normal_concat),
                                     ("reduce", geno.reduce, geno.reduce_concat)):
        if not edges or len(edges) % 2:
            raise GenotypeError(
                f"{cell_name} cell must have 2 edges per node (an even, non-zero number), "
                f"got {len(edges)}")
        for k, (op, idx) in enumerate(edges):
            node = k // 2
            if op not in PRIMITIVES or op == "none":
                choices = ", ".join(p for p in PRIMITIVES if p != "none")
                raise GenotypeError(f"{cell_name} edge {k}: unknown operation {op!r} "
                                    f"(choose from: {choices})")
            if not 0 <= idx < node + 2:
                raise GenotypeError(f"{cell_name} edge {k} (node {node + 2}): input {idx} out "
                                    f"of range 0..{node + 1}")
            if k % 2 and edges[k - 1] == (op, idx):
                raise GenotypeError(f"{cell_name} node {node + 2} uses the edge ({op}, {idx}) "
                                    f"twice; the two edges of a node must differ")
        steps = len(edges) // 2
        out_of_range = any(not 0 <= c < steps + 2 for c in concat)
        if not concat or out_of_range or len(set(concat)) != len(concat):
            raise GenotypeError(f"{cell_name}_concat {list(concat)} must list distinct states "
                                f"in 0..{steps + 1}")


def genotype_from_dict(data: Any, source: str = "genotype") -> Genotype:
    """Parse and validate the JSON form written by :meth:`Genotype.to_dict`."""
    if not isinstance(data, Mapping):
        raise GenotypeError(f"{source}: expected a JSON object")
    if data.get("format", GENOTYPE_FORMAT) != GENOTYPE_FORMAT:
        raise GenotypeError(f"{source}: not a robustnas genotype (format={data.get('format')!r})")
    version = data.get("version", GENOTYPE_VERSION)
    if version != GENOTYPE_VERSION:
        raise GenotypeError(f"{source}: unsupported genotype version {version!r} "
                            f"(this robustnas reads version {GENOTYPE_VERSION})")
    try:
        normal = [(op, idx) for op, idx in data["normal"]]
        reduce = [(op, idx) for op, idx in data["reduce"]]
        for op, idx in normal + reduce:
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise TypeError(f"input index must be an integer, got {idx!r}")
            if not isinstance(op, str):
                raise TypeError(f"operation must be a name, got {op!r}")
        normal_concat = list(data.get("normal_concat", range(2, 2 + len(normal) // 2)))
        reduce_concat = list(data.get("reduce_concat", range(2, 2 + len(reduce) // 2)))
        for c in normal_concat + reduce_concat:
            if isinstance(c, bool) or not isinstance(c, int):
                raise TypeError(f"concat entries must be integers, got {c!r}")
    except KeyError as exc:
        raise GenotypeError(f"{source}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise GenotypeError(f"{source}: edges must be [op, input] pairs and concat lists of "
                            f"integers ({exc})") from None
    provenance = data.get("provenance") or {}
    if not isinstance(provenance, Mapping):
        raise GenotypeError(f"{source}: provenance must be an object")
    try:
        return make_genotype(normal, reduce, normal_concat, reduce_concat, provenance)
    except GenotypeError as exc:
        raise GenotypeError(f"{source}: {exc}") from None


def save_genotype(geno: Genotype, path: str | Path) -> Path:
    """Write ``geno`` as JSON atomically (temporary file, then rename)."""
    from robustnas.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(geno.to_dict(), indent=2) + "\n")
    return path
