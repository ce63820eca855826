"""NARes architectures: per-stage depth and widen factor of a WideResNet.

A NARes architecture (Lu et al., "A Neural Architecture Dataset for Adversarial Robustness")
is six integers, ``D1, W1, D2, W2, D3, W3``: stage ``i`` has ``D_i`` blocks and widen factor
``W_i``. The benchmark's choices are :data:`DEPTHS` x :data:`WIDTHS` per stage, 5^6 = 15,625
architectures. Forms:

* string ``"D1,W1,D2,W2,D3,W3"`` (e.g. ``5,10,5,10,5,10``, which is WRN-34-10),
* JSON ``{"format": "robustnas-nares-genotype", "version": 1, "depths": [...],
  "widths": [...], "provenance": {...}}``; the authors' ``{"D1": .., "W1": .., ...}`` object
  (their table's ``arch`` field) is read too.

Validation is *strict* by default (the benchmark's choice sets); ``strict=False`` accepts any
depth >= 1 and widen factor >= 1, for networks small enough to train on a CPU. Reading a
genotype never imports PyTorch.

Enumeration (:data:`ALL`, :func:`arch_index`) follows the authors' ``get_arch_iterator``
(``itertools.product`` over D1, W1, D2, W2, D3, W3, the first coordinate slowest). This is
*not* the dataset's ``arch_id`` (1..15625 by ascending MACs): ids come from the table.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from robustnas.errors import GenotypeError

DEPTHS: tuple[int, ...] = (4, 5, 7, 9, 11)
"""The benchmark's blocks per stage (each stage chooses independently)."""
WIDTHS: tuple[int, ...] = (8, 10, 12, 14, 16)
"""The benchmark's widen factors per stage."""
STAGES = 3
BASE_CHANNELS: tuple[int, ...] = (16, 32, 64)
"""Channels of stage ``i`` per unit of widen factor (the WideResNet layout)."""
NUM_ARCHS = (len(DEPTHS) * len(WIDTHS)) ** STAGES

NARES_GENOTYPE_FORMAT = "robustnas-nares-genotype"
NARES_GENOTYPE_VERSION = 1
AUTHORS_KEYS: tuple[str, ...] = ("D1", "W1", "D2", "W2", "D3", "W3")
"""The authors' names of the six coordinates, in string order."""

_JSON_FIELDS = {"format", "version", "depths", "widths", "provenance"}
_STRING = re.compile(r"^\s*\d+\s*(?:,\s*\d+\s*){5}$")


@dataclass(frozen=True)
class NAResGenotype:
    """One NARes architecture: ``depths[i]`` blocks of widen factor ``widths[i]`` in stage i.

    ``strict`` (construction only) checks the benchmark's choice sets; ``strict=False`` only
    positive integers. Equality and hashing ignore ``provenance``.
    """

    depths: tuple[int, int, int]
    widths: tuple[int, int, int]
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    strict: InitVar[bool] = True
    space = "nares"

    def __post_init__(self, strict: bool) -> None:
        validate(self.depths, self.widths, strict)

    # -- forms ----------------------------------------------------------------------------
    def coordinates(self) -> tuple[int, ...]:
        """``(D1, W1, D2, W2, D3, W3)``."""
        return tuple(v for pair in zip(self.depths, self.widths) for v in pair)

    def to_string(self) -> str:
        """``"D1,W1,D2,W2,D3,W3"``, e.g. ``5,10,5,10,5,10``."""
        return ",".join(str(v) for v in self.coordinates())

    @classmethod
    def from_string(cls, text: Any, provenance: Mapping[str, Any] | None = None,
                    source: str = "architecture string", strict: bool = True) -> NAResGenotype:
        """Parse ``"D1,W1,D2,W2,D3,W3"`` (spaces around the numbers allowed)."""
        depths, widths = parse_nares_string(text, source)
        return _make(depths, widths, provenance, source, strict)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON-ready form."""
        return {"format": NARES_GENOTYPE_FORMAT, "version": NARES_GENOTYPE_VERSION,
                "depths": list(self.depths), "widths": list(self.widths),
                "provenance": dict(self.provenance)}

    def to_authors_dict(self) -> dict[str, int]:
        """The authors' ``{"D1": .., "W1": .., ...}`` form (their table's ``arch`` field)."""
        return dict(zip(AUTHORS_KEYS, self.coordinates()))

    def __str__(self) -> str:
        return self.to_string()

    # -- queries --------------------------------------------------------------------------
    def channels(self) -> tuple[int, int, int]:
        """Output channels of each stage: 16·W1, 32·W2, 64·W3."""
        return tuple(b * w for b, w in zip(BASE_CHANNELS, self.widths))  # type: ignore[return-value]

    def in_benchmark(self) -> bool:
        """Whether every coordinate is one of the benchmark's choices."""
        return all(d in DEPTHS for d in self.depths) and all(w in WIDTHS for w in self.widths)

    def wrn_name(self) -> str | None:
        """``wrn-34-10`` when all stages share depth and width (WRN-(6D+4)-W), else None."""
        if len(set(self.depths)) == 1 and len(set(self.widths)) == 1:
            return f"wrn-{6 * self.depths[0] + 4}-{self.widths[0]}"
        return None

    def describe(self) -> str:
        """One line: the string form, with the WideResNet name when there is one."""
        name = self.wrn_name()
        return self.to_string() + (f" ({name.upper()})" if name else "")


def validate(depths: Any, widths: Any, strict: bool = True) -> None:
    """Check three depths and three widths; GenotypeError (one line) otherwise.

    Strict: the benchmark's :data:`DEPTHS` and :data:`WIDTHS`. Not strict: integers >= 1.
    """
    for label, values, choices in (("depths", depths, DEPTHS), ("widths", widths, WIDTHS)):
        if not isinstance(values, tuple) or len(values) != STAGES:
            raise GenotypeError(f"a NARes architecture has {STAGES} {label} (one per stage) "
                                f"as a tuple, got {values!r}")
        for stage, v in enumerate(values, start=1):
            letter = label[0].upper()
            if isinstance(v, bool) or not isinstance(v, int):
                raise GenotypeError(f"{letter}{stage} must be an integer, got {v!r}")
            if strict and v not in choices:
                raise GenotypeError(f"{letter}{stage} = {v} is not a NARes choice (choose from "
                                    f"{', '.join(map(str, choices))}; strict=False accepts "
                                    f"any value >= 1)")
            if v < 1:
                raise GenotypeError(f"{letter}{stage} must be at least 1, got {v}")


def _make(depths: Sequence[int], widths: Sequence[int], provenance: Mapping[str, Any] | None,
          source: str, strict: bool) -> NAResGenotype:
    """A genotype, with ``source`` prefixed to any validation error."""
    try:
        return NAResGenotype(tuple(depths), tuple(widths), dict(provenance or {}),  # type: ignore[arg-type]
                             strict=strict)
    except GenotypeError as exc:
        raise GenotypeError(f"{source}: {exc}") from None


def is_nares_string(text: Any) -> bool:
    """Whether ``text`` looks like ``D1,W1,D2,W2,D3,W3`` (six comma-separated integers)."""
    return isinstance(text, str) and bool(_STRING.match(text))


def parse_nares_string(text: Any, source: str = "architecture string"
                       ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(depths, widths)`` of ``"D1,W1,D2,W2,D3,W3"``; GenotypeError naming the problem."""
    if not isinstance(text, str):
        raise GenotypeError(f"{source}: expected a string like '5,10,5,10,5,10', got {text!r}")
    tokens = [t.strip() for t in text.strip().split(",")]
    if len(tokens) != 2 * STAGES:
        raise GenotypeError(f"{source}: {text.strip()!r} must be six comma-separated integers "
                            f"D1,W1,D2,W2,D3,W3 (e.g. 5,10,5,10,5,10), got {len(tokens)} "
                            f"value(s)")
    for name, token in zip(AUTHORS_KEYS, tokens):
        if not token.isdigit() or not token.isascii():
            raise GenotypeError(f"{source}: {name} = {token!r} is not a non-negative integer")
    values = [int(t) for t in tokens]
    return tuple(values[0::2]), tuple(values[1::2])


def nares_genotype_from_dict(data: Any, source: str = "genotype",
                             strict: bool = True) -> NAResGenotype:
    """Parse the JSON form of :meth:`NAResGenotype.to_dict` (``version`` may be omitted) or
    the authors' ``{"D1": .., "W1": .., ...}`` object; GenotypeError otherwise."""
    if not isinstance(data, Mapping):
        raise GenotypeError(f"{source}: expected a JSON object")
    if "format" not in data and set(AUTHORS_KEYS) <= set(data):
        return _from_authors(data, source, strict)
    if data.get("format") != NARES_GENOTYPE_FORMAT:
        raise GenotypeError(f"{source}: not a robustnas NARes genotype (format="
                            f"{data.get('format')!r}, expected {NARES_GENOTYPE_FORMAT!r}, or "
                            f"the authors' {{\"D1\": .., \"W1\": .., ...}})")
    version = data.get("version", NARES_GENOTYPE_VERSION)
    if version != NARES_GENOTYPE_VERSION:
        raise GenotypeError(f"{source}: unsupported genotype version {version!r} (this "
                            f"robustnas reads version {NARES_GENOTYPE_VERSION})")
    unknown = sorted(set(data) - _JSON_FIELDS)
    if unknown:
        raise GenotypeError(f"{source}: unknown field(s) {', '.join(map(str, unknown))}")
    for name in ("depths", "widths"):
        if not isinstance(data.get(name), list):
            raise GenotypeError(f"{source}: {name!r} must be a list of {STAGES} integers")
    provenance = data.get("provenance", {})
    if not isinstance(provenance, Mapping):
        raise GenotypeError(f"{source}: provenance must be an object")
    return _make(data["depths"], data["widths"], provenance, source, strict)


def _from_authors(data: Mapping[str, Any], source: str, strict: bool) -> NAResGenotype:
    unknown = sorted(set(data) - set(AUTHORS_KEYS))
    if unknown:
        raise GenotypeError(f"{source}: unknown field(s) {', '.join(map(str, unknown))} in a "
                            f"{{\"D1\": .., \"W1\": .., ...}} architecture")
    values = [data[k] for k in AUTHORS_KEYS]
    return _make(values[0::2], values[1::2], None, source, strict)


def save_nares_genotype(genotype: NAResGenotype, path: str | Path) -> Path:
    """Write ``genotype`` as JSON atomically."""
    from robustnas.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(genotype.to_dict(), indent=2) + "\n")
    return path


def load_nares_genotype(spec: Any, strict: bool = True) -> NAResGenotype:
    """A genotype from a string ``D1,W1,...``, a JSON file, a parsed JSON object or a
    genotype (returned as is, after the strict check when ``strict``)."""
    if isinstance(spec, NAResGenotype):
        if strict and not spec.in_benchmark():
            validate(spec.depths, spec.widths, strict=True)  # raises, naming the coordinate
        return spec
    if isinstance(spec, Mapping):
        return nares_genotype_from_dict(spec, strict=strict)
    text = str(spec).strip()
    if is_nares_string(text):
        return NAResGenotype.from_string(text, strict=strict)
    path = Path(text)
    if not path.is_file():
        if "," in text:  # meant as a string: say what is wrong with it
            return NAResGenotype.from_string(text, strict=strict)
        raise GenotypeError(f"NARes architecture {text!r} is neither a string like "
                            f"'5,10,5,10,5,10' (D1,W1,D2,W2,D3,W3) nor a genotype JSON file")
    from robustnas.space.genotype_file import read_genotype_json

    data = read_genotype_json(path)  # size, encoding and nesting limits
    return nares_genotype_from_dict(data, source=str(path), strict=strict)


# -- enumeration ---------------------------------------------------------------------------
def all_genotypes() -> Iterator[NAResGenotype]:
    """Every benchmark architecture once, in the authors' enumeration order."""
    for d1, w1, d2, w2, d3, w3 in itertools.product(DEPTHS, WIDTHS, repeat=STAGES):
        yield NAResGenotype((d1, d2, d3), (w1, w2, w3))


def arch_index(genotype: NAResGenotype) -> int:
    """The position (0..15624) of a benchmark architecture in :func:`all_genotypes` (the
    base-25 number of its per-stage (depth, width) choices). Not the dataset's ``arch_id``."""
    if not genotype.in_benchmark():
        raise GenotypeError(f"{genotype.to_string()} is not a NARes benchmark architecture")
    index = 0
    for d, w in zip(genotype.depths, genotype.widths):
        index = (index * len(DEPTHS) + DEPTHS.index(d)) * len(WIDTHS) + WIDTHS.index(w)
    return index


def genotype_at(index: int) -> NAResGenotype:
    """The architecture at position ``index`` of :func:`all_genotypes` (inverse of
    :func:`arch_index`)."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_ARCHS:
        raise GenotypeError(f"NARes enumeration index {index!r} out of range "
                            f"0..{NUM_ARCHS - 1}")
    pairs = []
    for _ in range(STAGES):
        index, w = divmod(index, len(WIDTHS))
        index, d = divmod(index, len(DEPTHS))
        pairs.append((DEPTHS[d], WIDTHS[w]))
    pairs.reverse()
    return NAResGenotype(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))  # type: ignore[arg-type]


_ALL: list[NAResGenotype] | None = None


def __getattr__(name: str) -> Any:
    # ALL holds 15,625 objects: built on first use, so importing the codec stays instant.
    global _ALL
    if name == "ALL":
        if _ALL is None:
            _ALL = list(all_genotypes())
        return _ALL
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
