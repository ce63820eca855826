"""Reader of NARes (Lu et al., "A Neural Architecture Dataset for Adversarial Robustness").

Our own MIT code. The format was read from the authors' public reader ``dataset.py``
(repository zhichao-lu/arch-dataset-adv-robustness, commit e1c4a34; classes ``Record``,
``TrainRecord``, ``TrainHistory``, ``AttackData``, ``CorruptionEntry`` and
``NASBenchR_CIFAR10_Dataset.get_metric``) and README; none of its code is used.

Layout under the root: ``cifar10.jsonl`` (the file in the authors' release ``nares.txz``),
or ``nares.txz`` itself. One JSON object per line:

* ``arch_id``: 1..15625, by ascending MACs; ``arch``: ``{"D1", "W1", "D2", "W2", "D3",
  "W3"}``; ``MACs``, ``Params``;
* ``train``: a list of training runs, each with ``seed``, ``best_epoch`` and per-epoch lists
  ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` (clean), ``pgd``, ``pgd_stable``,
  ``pgd_lip``, ``pgd_loss``, ``cw``, ``cw_stable``, ``cw_lip``, ``cw_loss`` (and
  ``gpu_type``, ``timestamp``, ``training_time``, not read);
* ``test_best``: one test record per run (the model of its best epoch): ``test_clean_acc``,
  ``test_loss``, ``Linf_fgsm_acc``, ``Linf_fgsm_stable``, ``Linf_pgd_acc``,
  ``Linf_pgd_stable``, ``Linf_pgd_lip``, ``Linf_cw_acc``, ``Linf_cw_stable``,
  ``Linf_cw_lip``, ``Linf_aa_acc`` and ``corruptions`` = ``{name: {"1".."5": {"acc",
  "loss"}}}``.

Keys are the authors' metric names (their ``Metric`` values; the upper-case enum names and
the raw field names are accepted too). As the authors' ``get_metric`` does, a validation
key is the per-epoch list at index ``best_epoch`` of each run, and every key is the mean
over the runs (the release has one run per architecture). ``test_corrupt_acc`` is the mean
over all corruptions and severities; ``test_corrupt_<name>`` holds one corruption's five
severities. Test fields missing from a record read as NaN (the authors read them with
``.get``). Accuracies are percentages, as in the file.

The file is streamed once, on first use: only the numbers above are kept (the per-epoch
lists are dropped line by line), so every later query and column is an array lookup.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import DataError, GenotypeError, UsageError
from robustnas.space.nares.genotype import (
    NAResGenotype,
    is_nares_string,
    load_nares_genotype,
    nares_genotype_from_dict,
)
from robustnas.tables.base import BENCHMARKS, ArchResult, KeySeries, TableBench
from robustnas.tables.meta import BenchMeta
from robustnas.tables.source import BenchSource

ORIGIN = ("NARes (Lu et al.; nares.txz from "
          "https://github.com/zhichao-lu/arch-dataset-adv-robustness/releases)")
DATA_FILE = "cifar10.jsonl"
ARCHIVE = "nares.txz"
DATASETS = ("cifar10",)
CLEAN_KEY = "val_clean_acc"
SEARCH_KEY = "val_pgd_acc"
"""The authors' benchmark objective (``VAL_PGD_ACC``)."""

HISTORY_KEYS: dict[str, str] = {
    "train_acc": "train_acc", "train_loss": "train_loss",
    "val_clean_acc": "val_acc", "val_loss": "val_loss",
    "val_pgd_acc": "pgd", "val_pgd_stable": "pgd_stable", "val_pgd_lip": "pgd_lip",
    "val_pgd_loss": "pgd_loss",
    "val_cw_acc": "cw", "val_cw_stable": "cw_stable", "val_cw_lip": "cw_lip",
    "val_cw_loss": "cw_loss",
}
"""Key -> per-epoch list of a training run, read at ``best_epoch``."""
TEST_KEYS: dict[str, str] = {
    "test_clean_acc": "test_clean_acc", "test_loss": "test_loss",
    "test_fgsm_acc": "Linf_fgsm_acc", "test_fgsm_stable": "Linf_fgsm_stable",
    "test_pgd_acc": "Linf_pgd_acc", "test_pgd_stable": "Linf_pgd_stable",
    "test_pgd_lip": "Linf_pgd_lip",
    "test_cw_acc": "Linf_cw_acc", "test_cw_stable": "Linf_cw_stable",
    "test_cw_lip": "Linf_cw_lip",
    "test_aa_acc": "Linf_aa_acc",
}
"""Key -> field of a run's test record."""
RECORD_KEYS: dict[str, str] = {"macs": "MACs", "params": "Params"}
"""Key -> field of the record itself."""
BEST_EPOCH_KEY = "best_epoch"
CORRUPT_KEY = "test_corrupt_acc"
CORRUPTION_PREFIX = "test_corrupt_"
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
               "defocus_blur", "glass_blur", "gaussian_blur", "motion_blur", "zoom_blur",
               "snow", "frost", "fog", "brightness", "spatter", "contrast", "elastic_transform",
               "pixelate", "jpeg_compression", "saturate")
"""The 19 CIFAR-10-C corruptions the authors' ``CorruptionData`` lists."""
SEVERITIES = ("1", "2", "3", "4", "5")
DEFAULT_KEYS = ("val_clean_acc", "val_pgd_acc", "val_cw_acc", "test_clean_acc",
                "test_fgsm_acc", "test_pgd_acc", "test_cw_acc", "test_aa_acc", CORRUPT_KEY)
"""The rows of the authors' benchmark table (validation and test accuracies)."""
SCALAR_KEYS = (*HISTORY_KEYS, *TEST_KEYS, CORRUPT_KEY, BEST_EPOCH_KEY, *RECORD_KEYS)
ALIASES: dict[str, str] = {raw: key for key, raw in
                           (*HISTORY_KEYS.items(), *TEST_KEYS.items(), *RECORD_KEYS.items())
                           if raw != key}
"""The raw field names (``val_acc``, ``pgd``, ``Linf_aa_acc``, ``MACs``, ...) as aliases."""


def _number(value: Any, what: str) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is {value!r}, not a number")
    return float(value)


def _mean(values: list[float]) -> float:
    # Plain Python: numpy's overhead on one or two numbers dominated reading 15,625 lines.
    return values[0] if len(values) == 1 else (sum(values) / len(values) if values
                                               else float("nan"))


def _mean_rows(rows: list[list[float]]) -> list[float]:
    return [_mean(list(column)) for column in zip(*rows)]


def parse_record(record: Any) -> tuple[int, NAResGenotype, dict[str, Any]]:
    """``(arch_id, genotype, {key: value})`` of one line's object; ValueError naming the
    problem. Corruption keys hold five severities; everything else is one number."""
    if not isinstance(record, Mapping):
        raise ValueError("not a JSON object")
    arch_id = record.get("arch_id")
    if isinstance(arch_id, bool) or not isinstance(arch_id, int) or arch_id < 1:
        raise ValueError(f"arch_id must be a positive integer, got {arch_id!r}")
    if "arch" not in record:
        raise ValueError("no 'arch'")
    try:
        genotype = nares_genotype_from_dict(record["arch"], "arch")
    except GenotypeError as exc:
        raise ValueError(str(exc)) from None
    runs = record.get("train")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, Mapping) for r in runs):
        raise ValueError("'train' must be a non-empty list of training runs")
    tests = record.get("test_best") or []
    if not isinstance(tests, list) or (tests and len(tests) != len(runs)):
        raise ValueError(f"'test_best' must be a list with one entry per run "
                         f"({len(runs)}), got {tests!r:.60}")
    tests = tests or [None] * len(runs)
    values: dict[str, Any] = {k: _number(record.get(raw), raw) for k, raw in RECORD_KEYS.items()}
    per_run: dict[str, list[Any]] = {}
    for n, (run, test) in enumerate(zip(runs, tests)):
        for key, value in _run_values(run, test, f"train[{n}]").items():
            per_run.setdefault(key, []).append(value)
    for key, rows in per_run.items():
        if key.startswith(CORRUPTION_PREFIX) and key != CORRUPT_KEY:
            values[key] = _mean_rows(rows)
        else:
            values[key] = _mean(rows)
    return arch_id, genotype, values


def _run_values(run: Mapping[str, Any], test: Any, where: str) -> dict[str, Any]:
    """The numbers of one training run and its test record."""
    best = run.get("best_epoch")
    if isinstance(best, bool) or not isinstance(best, int) or best < 0:
        raise ValueError(f"{where}.best_epoch must be an epoch index >= 0, got {best!r}")
    out: dict[str, Any] = {BEST_EPOCH_KEY: float(best)}
    for key, raw in HISTORY_KEYS.items():
        history = run.get(raw)
        if history is None:
            out[key] = float("nan")
            continue
        if not isinstance(history, list) or best >= len(history):
            raise ValueError(f"{where}.{raw} must be a per-epoch list with an entry at "
                             f"best_epoch {best}, got "
                             f"{len(history) if isinstance(history, list) else history!r}"
                             f"{' entries' if isinstance(history, list) else ''}")
        out[key] = _number(history[best], f"{where}.{raw}[{best}]")
    if test is not None and not isinstance(test, Mapping):
        raise ValueError(f"test_best of {where} is not an object")
    test = test or {}
    for key, raw in TEST_KEYS.items():
        out[key] = _number(test.get(raw), f"test_best.{raw}")
    corruptions = test.get("corruptions") or {}
    if not isinstance(corruptions, Mapping):
        raise ValueError("test_best.corruptions must map corruption names to severities")
    accs = []
    for name, levels in corruptions.items():
        if not isinstance(levels, Mapping) or not all(
                isinstance(levels.get(s), Mapping) for s in SEVERITIES):
            raise ValueError(f"test_best.corruptions.{name} must map severities "
                             f"{', '.join(SEVERITIES)} to {{acc, loss}}")
        row = [_number(levels[s].get("acc"), f"corruptions.{name}.{s}.acc") for s in SEVERITIES]
        out[f"{CORRUPTION_PREFIX}{name}"] = row
        accs.append(row)
    # The authors average the severities of all corruptions present (their total_avg).
    out[CORRUPT_KEY] = _mean([v for row in accs for v in row])
    return out


@dataclass(frozen=True)
class NAResMeta(BenchMeta):
    """The table's ids and architectures; every id is its own representative."""

    def resolve(self, arch: Any) -> tuple[str, str]:
        """``(id, id)`` of an ``arch_id`` (int or digits), a ``D1,W1,D2,W2,D3,W3`` string,
        a :class:`NAResGenotype` or a ``{"D1": .., ...}`` object."""
        if isinstance(arch, int) and not isinstance(arch, bool):
            arch = str(arch)
        if isinstance(arch, str) and arch.strip().isdigit():
            arch_id = str(int(arch.strip()))
            if arch_id not in self.strings:
                raise DataError(f"architecture id {arch_id} is not in the NARes table "
                                f"(ids 1..{len(self.strings)})")
            return arch_id, arch_id
        if not isinstance(arch, (NAResGenotype, Mapping)) and not (
                isinstance(arch, str) and ("," in arch or is_nares_string(arch))):
            raise DataError(f"architecture {str(arch).strip()!r} is neither a NARes arch_id "
                            f"nor a string D1,W1,D2,W2,D3,W3 like '5,10,5,10,5,10'")
        try:
            text = load_nares_genotype(arch, strict=False).to_string()
        except GenotypeError as exc:
            raise DataError(str(exc)) from None
        if text not in self.by_string:
            raise DataError(f"architecture {text} is not in the NARes table (depths from 4, 5, "
                            f"7, 9, 11 and widths from 8, 10, 12, 14, 16)")
        arch_id = self.by_string[text]
        return arch_id, arch_id


@dataclass(frozen=True)
class _Table:
    """The parsed file: architectures and one array per key (rows in id order)."""

    meta: NAResMeta
    ids: tuple[str, ...]
    columns: dict[str, np.ndarray]
    label: str


@BENCHMARKS.register("nares")
class NAResBench(TableBench):
    """NARes under ``root``; see the module docstring for the file and its keys."""

    name = "NARes"
    datasets = DATASETS
    space = "nares"
    search_key = SEARCH_KEY

    def __init__(self, root: str | Path) -> None:
        self.source = BenchSource(root, ORIGIN)
        self._series: dict[str, KeySeries] = {}

    # -- the file ---------------------------------------------------------------------------
    def locate(self) -> tuple[Path, str | None]:
        """``(path, None)`` for the extracted file, ``(archive, member)`` for the release."""
        root = self.source.root
        for path in (root / DATA_FILE, root / "data" / DATA_FILE):
            if path.is_file():
                return path, None
        archive = root / ARCHIVE
        if archive.is_file():
            return archive, DATA_FILE
        raise DataError(f"missing {root / DATA_FILE} (the file in {ARCHIVE} from {ORIGIN}; "
                        f"put the extracted file or {ARCHIVE} under {root})")

    def _lines(self) -> Iterator[bytes]:
        """The data file's lines, streamed (from the archive without extracting it)."""
        path, member = self.locate()
        if member is None:
            with path.open("rb") as handle:
                yield from handle
            return
        try:
            with tarfile.open(path, "r|xz") as archive:
                for info in archive:
                    if info.isfile() and Path(info.name).name == member:
                        handle = archive.extractfile(info)
                        assert handle is not None
                        yield from handle
                        return
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable {ARCHIVE} archive ({exc})") from None
        raise DataError(f"{path}: no {member} inside (is it the NARes release {ARCHIVE}?)")

    @cached_property
    def _table(self) -> _Table:
        path, member = self.locate()
        label = f"{path}:{member}" if member else str(path)
        rows: dict[str, dict[str, Any]] = {}
        strings: dict[str, str] = {}
        by_string: dict[str, str] = {}
        for lineno, line in enumerate(self._lines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
                raise DataError(f"{label}:{lineno}: not valid JSON ({reason})") from None
            try:
                arch_id, genotype, values = parse_record(record)
            except ValueError as exc:
                raise DataError(f"{label}:{lineno}: {exc}") from None
            key, text = str(arch_id), genotype.to_string()
            if key in strings:
                raise DataError(f"{label}:{lineno}: arch_id {arch_id} appears twice")
            if text in by_string:
                raise DataError(f"{label}:{lineno}: architecture {text} appears twice (arch_id "
                                f"{by_string[text]} and {arch_id})")
            strings[key], by_string[text], rows[key] = text, key, values
        if not rows:
            raise DataError(f"{label}: no records (expected one JSON object per line)")
        ids = tuple(sorted(rows, key=int))
        meta = NAResMeta(strings, {i: i for i in ids}, {}, by_string, ids)
        return _Table(meta, ids, self._columns(ids, rows), label)

    @staticmethod
    def _columns(ids: tuple[str, ...], rows: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
        """One array per key: ``(archs,)``, or ``(archs, 5)`` for one corruption; NaN where
        a record lacks the key."""
        names = [f"{CORRUPTION_PREFIX}{c}" for c in CORRUPTIONS]
        for values in rows.values():  # corruptions beyond the authors' 19, in file order
            names += [k for k in values if k.startswith(CORRUPTION_PREFIX)
                      and k not in names and k != CORRUPT_KEY]
        columns = {k: np.array([rows[i].get(k, np.nan) for i in ids], dtype=np.float64)
                   for k in SCALAR_KEYS}
        missing = [np.nan] * len(SEVERITIES)
        for k in names:
            columns[k] = np.array([rows[i].get(k, missing) for i in ids], dtype=np.float64)
        return columns

    # -- TableBench -------------------------------------------------------------------------
    @property
    def meta(self) -> NAResMeta:  # type: ignore[override]
        """Ids and architecture strings (the file is read on first use)."""
        return self._table.meta

    def keys(self, dataset: str) -> list[str]:
        """Validation, test, corruption and complexity keys (see the module docstring)."""
        self.check_dataset(dataset)
        return list(self._table.columns)

    def available_keys(self, dataset: str, measure: str = "accuracy") -> list[str]:
        """Keys with at least one value in the file."""
        self.check_measure(measure)
        return [k for k, v in self._table.columns.items() if np.isfinite(v).any()]

    def default_keys(self, dataset: str) -> list[str]:
        """The rows of the authors' benchmark table that the file has."""
        present = set(self.available_keys(dataset))
        return [k for k in DEFAULT_KEYS if k in present]

    def clean_key(self, dataset: str) -> str:
        """``val_clean_acc``: clean accuracy on the validation split at the best epoch."""
        return CLEAN_KEY

    def canonical_key(self, key: str) -> str:
        """``key`` under its own name: the authors' upper-case names (``VAL_PGD_ACC``) and
        raw field names (``pgd``, ``Linf_aa_acc``) map onto the keys."""
        key = ALIASES.get(key, key)
        return key.lower() if key.lower() in self._table.columns else key

    def query(self, arch: Any, dataset: str, keys: Sequence[str] | None = None,
              measure: str = "accuracy") -> ArchResult:
        """The numbers of ``arch`` (see :meth:`NAResMeta.resolve`), under the keys' own
        names (an alias such as ``VAL_PGD_ACC`` is reported as ``val_pgd_acc``)."""
        if keys is not None:
            self.check_dataset(dataset)
            keys = [self.canonical_key(k) for k in keys]
        return super().query(arch, dataset, keys, measure)

    def series(self, dataset: str, key: str, measure: str = "accuracy") -> KeySeries:
        """Every architecture's value of ``key`` (an array lookup after the first read)."""
        self.check_dataset(dataset)
        self.check_measure(measure)
        table = self._table
        key = self.canonical_key(key)
        if key not in table.columns:
            raise UsageError(f"unknown NARes key {key!r} (choose from: "
                             f"{', '.join(table.columns)})")
        if key not in self._series:
            values = table.columns[key]
            if values.ndim == 2:
                levels = tuple(float(s) for s in SEVERITIES)
                s = KeySeries(dataset, key, measure, table.ids, values, levels, "severity",
                              table.label)
            else:
                s = KeySeries(dataset, key, measure, table.ids, values, None, "", table.label)
            self._series[key] = s
        return self._series[key]
