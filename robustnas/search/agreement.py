"""How reproducible a derived cell is: agreement between the cells of several searches.

A decisive α (far from uniform, :mod:`robustnas.space.decisiveness`) is not enough: when
the α steps amplify rounding-level differences, another seed, thread count or number of
processes derives a different, equally decisive cell. Given the genotypes of several
searches that differ only in such a factor (e.g. the search seeds of one regulariser), this
module measures

* **matching edges** of each pair of runs: per cell type and node, the size of the multiset
  intersection of the kept ``(operation, input)`` pairs, summed over nodes and both cells
  (out of ``2 · 2 · steps`` edges, 16 for DARTS' 4 nodes); reported as the mean, minimum
  and maximum over pairs, and the fraction of pairs that derive the same cell;
* the **fraction of runs deriving each edge** ``(cell, node, operation, input)``, and the
  **consensus** cell: at each node, for each input its most frequent operation, and of
  those the two most frequent edges on different inputs, as a derivation keeps them (ties:
  alphabetical operation, then the lower input), with its support (the mean fraction of
  runs deriving each of its edges; 1 = every run derived the consensus cell).

Only DARTS-style genotypes (``normal``/``reduce`` lists of ``(op, input)``, two per node)
are compared; :func:`agreement` raises ``ValueError`` for others.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CELLS = ("normal", "reduce")

EdgeKey = tuple[str, int, str, int]  # (cell, node, operation, input)


def _edges(genotype: Any) -> dict[str, list[tuple[str, int]]]:
    """``{cell: [(op, input), ...]}`` of a genotype object or its JSON dictionary."""
    out: dict[str, list[tuple[str, int]]] = {}
    for cell in CELLS:
        value = genotype.get(cell) if isinstance(genotype, Mapping) else getattr(
            genotype, cell, None)
        if value is None or len(value) % 2:
            raise ValueError(f"not a DARTS genotype: no even list of {cell!r} edges")
        out[cell] = [(str(op), int(index)) for op, index in value]
    if len(out["normal"]) != len(out["reduce"]):
        raise ValueError("not a DARTS genotype: normal and reduce cells differ in size")
    return out


def matching_edges(a: Any, b: Any) -> int:
    """Edges two genotypes share: per cell and node, the common ``(op, input)`` pairs."""
    ea, eb = _edges(a), _edges(b)
    if len(ea["normal"]) != len(eb["normal"]):
        raise ValueError("the genotypes have different numbers of nodes")
    total = 0
    for cell in CELLS:
        for node in range(len(ea[cell]) // 2):
            pa = Counter(ea[cell][2 * node:2 * node + 2])
            pb = Counter(eb[cell][2 * node:2 * node + 2])
            total += sum((pa & pb).values())
    return total


@dataclass
class Agreement:
    """Agreement between the cells of ``runs`` searches (see the module docstring)."""

    runs: int
    edges: int  #: edges per genotype (both cells)
    pair_matches: list[int] = field(default_factory=list)  #: matching edges of each pair
    edge_fractions: dict[EdgeKey, float] = field(default_factory=dict)
    consensus: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def same_cell_fraction(self) -> float | None:
        """Fraction of pairs of runs that derive the same cell (None: fewer than 2 runs)."""
        if not self.pair_matches:
            return None
        return sum(m == self.edges for m in self.pair_matches) / len(self.pair_matches)

    @property
    def consensus_support(self) -> float:
        """Mean fraction of runs deriving each edge of the consensus cell (1: all agree)."""
        values = [self.edge_fractions[(cell, position // 2, op, index)]
                  for cell, edges in self.consensus.items()
                  for position, (op, index) in enumerate(edges)]
        return sum(values) / len(values) if values else 0.0

    def summary(self) -> str:
        """One line: runs, matching edges over pairs, same-cell fraction, support."""
        if self.runs < 2:
            return f"1 run: no agreement to measure (consensus = that run's {self.edges} edges)"
        m = self.pair_matches
        return (f"{self.runs} runs: matching edges {statistics.mean(m):.1f}/{self.edges} "
                f"on average over {len(m)} pairs (min {min(m)}, max {max(m)}); same cell in "
                f"{self.same_cell_fraction:.0%} of pairs; consensus support "
                f"{self.consensus_support:.2f}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        pairs = self.pair_matches
        return {
            "runs": self.runs, "edges": self.edges,
            "matching_edges": {"pairs": list(pairs),
                               "mean": round(statistics.mean(pairs), 4) if pairs else None,
                               "min": min(pairs) if pairs else None,
                               "max": max(pairs) if pairs else None},
            "same_cell_fraction": self.same_cell_fraction,
            "consensus": {cell: [[op, index] for op, index in edges]
                          for cell, edges in self.consensus.items()},
            "consensus_support": round(self.consensus_support, 4),
            "edge_fractions": [
                {"cell": cell, "node": node, "op": op, "input": index,
                 "fraction": round(fraction, 4)}
                for (cell, node, op, index), fraction in sorted(
                    self.edge_fractions.items(), key=lambda kv: (CELLS.index(kv[0][0]),
                                                                 kv[0][1], -kv[1], kv[0][2:]))],
        }


def agreement(genotypes: Sequence[Any]) -> Agreement:
    """The agreement between ``genotypes`` (objects or their JSON dictionaries, >= 1)."""
    if not genotypes:
        raise ValueError("agreement needs at least one genotype")
    cells = [_edges(g) for g in genotypes]
    steps = len(cells[0]["normal"]) // 2
    if any(len(c["normal"]) // 2 != steps for c in cells):
        raise ValueError("the genotypes have different numbers of nodes")
    runs = len(cells)
    counts: Counter[EdgeKey] = Counter()
    for c in cells:
        for cell in CELLS:
            for node in range(steps):
                # An edge repeated within one node (two identical (op, input) pairs) counts
                # once per run, so that a fraction stays in [0, 1].
                for op, index in set(c[cell][2 * node:2 * node + 2]):
                    counts[(cell, node, op, index)] += 1
    fractions = {key: n / runs for key, n in counts.items()}
    consensus: dict[str, list[tuple[str, int]]] = {}
    for cell in CELLS:
        edges: list[tuple[str, int]] = []
        for node in range(steps):
            best: dict[int, tuple[int, str]] = {}  # input -> (count, op), most frequent op
            for (c, n, op, index), k in sorted(counts.items()):
                if (c, n) == (cell, node) and k > best.get(index, (0, ""))[0]:
                    best[index] = (k, op)
            kept = sorted(best, key=lambda index: (-best[index][0], index))[:2]
            edges += [(best[index][1], index) for index in sorted(kept)]
        consensus[cell] = edges
    pairs = [matching_edges(a, b) for a, b in itertools.combinations(genotypes, 2)]
    return Agreement(runs, 4 * steps, pairs, fractions, consensus)
