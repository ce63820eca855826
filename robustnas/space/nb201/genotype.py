"""NAS-Bench-201 cells: the standard string, the JSON form and strict validation.

A cell is six operations, one per edge, in the order of the standard string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node ``j`` (1..3) lists its edges from nodes
``0..j-1``. :data:`EDGES` gives ``(source, target)`` of each position; it is also the row
order of the supernet's α (NAS-Bench-201 sorts its ``"j<-i"`` edge keys the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustnas.errors import GenotypeError

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                              "avg_pool_3x3")
"""The five candidate operations, in the order of α's columns (here rather than in
:mod:`.ops`, so that reading a cell or a table never imports PyTorch)."""

NB201_GENOTYPE_FORMAT = "robustnas-nb201-genotype"
NB201_GENOTYPE_VERSION = 1
NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for j in range(1, NUM_NODES) for i in range(j))
"""``(source, target)`` of each of the 6 edges, in string (and α-row) order."""

_JSON_FIELDS = {"format", "version", "arch", "provenance"}


@dataclass(frozen=True)
class NB201Genotype:
    """One NAS-Bench-201 cell: ``ops[k]`` is the operation on edge :data:`EDGES` ``[k]``."""

    ops: tuple[str, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    space = "nb201"

    def __post_init__(self) -> None:
        validate_ops(self.ops)

    # -- forms ----------------------------------------------------------------------------
    def to_string(self) -> str:
        """The standard NAS-Bench-201 string, e.g. ``|nor_conv_3x3~0|+|none~0|...|``."""
        nodes = []
        for target in range(1, NUM_NODES):
            tokens = [f"{self.ops[k]}~{src}" for k, (src, dst) in enumerate(EDGES)
                      if dst == target]
            nodes.append("|" + "|".join(tokens) + "|")
        return "+".join(nodes)

    @classmethod
    def from_string(cls, text: str, provenance: Mapping[str, Any] | None = None,
                    source: str = "architecture string") -> NB201Genotype:
        """Parse the standard string strictly (node order, edge order, op names)."""
        return cls(parse_nb201_string(text, source), dict(provenance or {}))

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON-ready form."""
        return {"format": NB201_GENOTYPE_FORMAT, "version": NB201_GENOTYPE_VERSION,
                "arch": self.to_string(), "provenance": dict(self.provenance)}

    def __str__(self) -> str:
        return self.to_string()

    # -- queries --------------------------------------------------------------------------
    def edges(self) -> list[tuple[str, int, int]]:
        """``(op, source, target)`` of every edge, ``none`` included."""
        return [(op, src, dst) for op, (src, dst) in zip(self.ops, EDGES)]

    def count(self, op: str, cell: str = "cell") -> int:
        """How many edges use ``op``. ``cell`` is accepted for the search loop's sake: the
        one searched cell counts as ``"cell"``, ``"normal"`` and ``"both"``; there is no
        searched reduction cell (``"reduce"`` counts 0)."""
        if cell == "reduce":
            return 0
        return sum(1 for o in self.ops if o == op)

    def code(self) -> int:
        """This cell's position in :func:`~robustnas.space.nb201.sampler.all_cells` (0..15624):
        the base-5 number of its op indices, first edge most significant. This is *not*
        NAS-Bench-201's own architecture index (that lives in the benchmark's meta data)."""
        value = 0
        for op in self.ops:
            value = value * len(NB201_OPS) + NB201_OPS.index(op)
        return value

    def describe(self) -> str:
        """One-line text form (the standard string)."""
        return self.to_string()


def validate_ops(ops: Sequence[Any]) -> None:
    """Check six known operation names; raise GenotypeError."""
    if not isinstance(ops, tuple) or len(ops) != len(EDGES):
        raise GenotypeError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got "
                            f"{len(ops) if isinstance(ops, Sequence) else ops!r}")
    for k, op in enumerate(ops):
        if op not in NB201_OPS:
            src, dst = EDGES[k]
            raise GenotypeError(f"edge {src}->{dst}: unknown operation {op!r} "
                                f"(choose from: {', '.join(NB201_OPS)})")


def parse_nb201_string(text: Any, source: str = "architecture string") -> tuple[str, ...]:
    """The six ops of a standard string; anything else is a GenotypeError naming the problem."""
    if not isinstance(text, str):
        raise GenotypeError(f"{source}: expected a string like "
                            f"'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|', got {text!r}")
    text = text.strip()
    nodes = text.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise GenotypeError(f"{source}: {text!r} must have {NUM_NODES - 1} nodes joined by '+', "
                            f"got {len(nodes)}")
    ops: list[str] = []
    for target, node in enumerate(nodes, start=1):
        if len(node) < 2 or not node.startswith("|") or not node.endswith("|"):
            raise GenotypeError(f"{source}: node {target} {node!r} must look like '|op~0|...|'")
        tokens = node[1:-1].split("|")
        if len(tokens) != target:
            raise GenotypeError(f"{source}: node {target} needs {target} edge(s) (from nodes "
                                f"0..{target - 1}), got {len(tokens)} in {node!r}")
        for expected_src, token in enumerate(tokens):
            op, sep, src = token.partition("~")
            if not sep or not src.isdigit():
                raise GenotypeError(f"{source}: node {target}: {token!r} is not 'op~source'")
            if int(src) != expected_src or src != str(expected_src):
                raise GenotypeError(f"{source}: node {target}: edge {len(ops) + 1} must come "
                                    f"from node {expected_src}, got {token!r}")
            if op not in NB201_OPS:
                raise GenotypeError(f"{source}: unknown operation {op!r} (choose from: "
                                    f"{', '.join(NB201_OPS)})")
            ops.append(op)
    return tuple(ops)


def nb201_genotype_from_dict(data: Any, source: str = "genotype") -> NB201Genotype:
    """Parse and validate the JSON form written by :meth:`NB201Genotype.to_dict`."""
    if not isinstance(data, Mapping):
        raise GenotypeError(f"{source}: expected a JSON object")
    if data.get("format") != NB201_GENOTYPE_FORMAT:
        raise GenotypeError(f"{source}: not a robustnas NAS-Bench-201 genotype "
                            f"(format={data.get('format')!r}, expected "
                            f"{NB201_GENOTYPE_FORMAT!r})")
    if data.get("version") != NB201_GENOTYPE_VERSION:
        raise GenotypeError(f"{source}: unsupported genotype version {data.get('version')!r} "
                            f"(this robustnas reads version {NB201_GENOTYPE_VERSION})")
    unknown = sorted(set(data) - _JSON_FIELDS)
    if unknown:
        raise GenotypeError(f"{source}: unknown field(s) {', '.join(unknown)}")
    if "arch" not in data:
        raise GenotypeError(f"{source}: missing field 'arch'")
    provenance = data.get("provenance", {})
    if not isinstance(provenance, Mapping):
        raise GenotypeError(f"{source}: provenance must be an object")
    return NB201Genotype.from_string(data["arch"], provenance, source=source)


def load_nb201_genotype(spec: str | Path | NB201Genotype) -> NB201Genotype:
    """A cell from a standard string (``|...|``), a JSON file, or a genotype (returned as is)."""
    if isinstance(spec, NB201Genotype):
        return spec
    text = str(spec).strip()
    if text.startswith("|"):
        return NB201Genotype.from_string(text)
    path = Path(text)
    if not path.is_file():
        raise GenotypeError(f"NAS-Bench-201 cell {text!r} is neither a string like "
                            f"'|nor_conv_3x3~0|+|...|' nor a genotype JSON file")
    from robustnas.space.genotype_file import read_genotype_json

    data = read_genotype_json(path)  # size, encoding and nesting limits
    return nb201_genotype_from_dict(data, source=str(path))
