"""The benchmark's ``meta.json``: architecture ids, NAS-Bench-201 strings, isomorphs, ε.

Format (robustness dataset of Jung et al. 2023 and NAS-RobBench-201)::

    {"ids": {"<id>": {"nb201-string": "|...|", "isomorph": "<representative id>"}, ...},
     "epsilons": {"<key>": [ε, ...], ...}}          # epsilons: robustness dataset only

Ids are NAS-Bench-201's architecture indices (0 .. 15624). Only the representative of each
isomorphism class was evaluated; every id maps to its representative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from robustnas.errors import DataError, GenotypeError
from robustnas.space.nb201.genotype import NB201Genotype, parse_nb201_string


def _id(value: Any, label: str) -> str:
    """An id as the canonical decimal string (ints and digit strings accepted)."""
    if isinstance(value, bool):
        raise DataError(f"{label}: id {value!r} is not an integer")
    text = str(value).strip()
    if not text.isdigit():
        raise DataError(f"{label}: id {value!r} is not an integer")
    return str(int(text))


@dataclass(frozen=True)
class BenchMeta:
    """Parsed ``meta.json``: ``strings[id]``, ``isomorph[id]``, ``epsilons[key]``."""

    strings: Mapping[str, str]
    isomorph: Mapping[str, str]
    epsilons: Mapping[str, tuple[float, ...]]
    by_string: Mapping[str, str]
    representatives: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any, label: str) -> BenchMeta:
        """Validate and index the parsed JSON; malformed content raises DataError."""
        if not isinstance(data, Mapping) or not isinstance(data.get("ids"), Mapping):
            raise DataError(f"{label}: expected an object with an 'ids' mapping")
        strings: dict[str, str] = {}
        isomorph: dict[str, str] = {}
        for raw_id, entry in data["ids"].items():
            arch_id = _id(raw_id, label)
            if not isinstance(entry, Mapping) or "nb201-string" not in entry \
                    or "isomorph" not in entry:
                raise DataError(f"{label}: ids[{raw_id!r}] needs 'nb201-string' and 'isomorph'")
            try:
                ops = parse_nb201_string(entry["nb201-string"], f"{label}: ids[{raw_id!r}]")
            except GenotypeError as exc:
                raise DataError(str(exc)) from None
            strings[arch_id] = NB201Genotype(ops).to_string()
            isomorph[arch_id] = _id(entry["isomorph"], f"{label}: ids[{raw_id!r}].isomorph")
        for arch_id, rep in isomorph.items():
            if rep not in strings:
                raise DataError(f"{label}: ids[{arch_id!r}].isomorph {rep} is not an id")
        epsilons: dict[str, tuple[float, ...]] = {}
        raw_eps = data.get("epsilons", {})
        if not isinstance(raw_eps, Mapping):
            raise DataError(f"{label}: 'epsilons' must map keys to lists of numbers")
        for key, values in raw_eps.items():
            if not isinstance(values, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise DataError(f"{label}: epsilons[{key!r}] must be a list of numbers")
            epsilons[str(key)] = tuple(float(v) for v in values)
        reps = sorted({r for r in isomorph.values()}, key=int)
        return cls(strings, isomorph, epsilons, {s: i for i, s in strings.items()}, tuple(reps))

    def resolve(self, arch: Any) -> tuple[str, str]:
        """``(id, representative id)`` of an id (int or digits), a string or a genotype."""
        if isinstance(arch, NB201Genotype):
            text = arch.to_string()
        elif isinstance(arch, int) and not isinstance(arch, bool):
            text = str(arch)
        else:
            text = str(arch).strip()
        if text.isdigit():
            arch_id = str(int(text))
            if arch_id not in self.strings:
                raise DataError(f"architecture id {arch_id} is not in the benchmark's meta.json "
                                f"({len(self.strings)} ids)")
            return arch_id, self.isomorph[arch_id]
        if not text.startswith("|"):
            raise DataError(f"architecture {text!r} is neither an id nor a NAS-Bench-201 string "
                            f"like '|nor_conv_3x3~0|+|...|'")
        try:
            canonical = NB201Genotype.from_string(text).to_string()
        except GenotypeError as exc:
            raise DataError(str(exc)) from None
        if canonical not in self.by_string:
            raise DataError(f"architecture {canonical} is not in the benchmark's meta.json")
        arch_id = self.by_string[canonical]
        return arch_id, self.isomorph[arch_id]
