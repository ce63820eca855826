"""Robustness proxies of tabulated architectures at initialisation (use case (i) of Jung et al.,
"Neural Architecture Design and Robustness: A Dataset", ICLR 2023).

For each cell (a NAS-Bench-201 cell, or a NARes WideResNet): build its network with a fixed
seed, put it in eval mode (batch norm with its
initial running statistics, so per-sample figures do not interact) and measure, on one fixed
seeded batch of training images in [0, 1]: the mean Frobenius norm of the input-logit
Jacobian, the mean top eigenvalue of the input Hessian of the cross-entropy loss, the log10
of the certified Lipschitz upper bound (:mod:`robustnas.evaluation.lipschitz`), the
parameter count and the MACs. Results are appended to a JSON-lines file one cell at a time,
so an interrupted run resumes where it stopped (cells already in the file are skipped).

A NAS-Bench-201 cell's network has ``C`` channels and ``N`` cells per stage (the settings);
a NARes architecture fixes its whole network, so ``C`` and ``N`` do not apply to it (they
are still recorded, so that a file's settings stay comparable). NARes networks are full
benchmark WideResNets (tens of millions of parameters): measuring many takes long on a CPU.

Which proxies are measured is a choice (``proxies``: names of the registry
:data:`robustnas.tables.zero_cost.PROXIES`; by default the five above). Every proxy gets its
own freshly built network (seeded identically), because proxies change their network (its
mode, weights or precision). A cell in the file that lacks some requested proxies gets a
further line with just those; :func:`read_results` merges a cell's lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustnas.errors import DataError, UsageError
from robustnas.space.nares.genotype import NAResGenotype, is_nares_string, load_nares_genotype
from robustnas.space.nb201.genotype import NB201Genotype, load_nb201_genotype

if TYPE_CHECKING:  # pragma: no cover - PyTorch is imported where a network is measured,
    import torch  # so that the tables registry's discovery of this module stays light

PROXIES = ("jacobian_frobenius", "hessian_top_eigenvalue", "lipschitz_log10", "params", "macs")
"""The proxies measured when none are named (``zero_cost.base.DEFAULT_PROXIES``)."""


@dataclass(frozen=True)
class ProxySettings:
    """What the proxies are measured on (recorded with every result)."""

    dataset: str = "digits"
    data_root: str = "data"
    n: int = 32
    seed: int = 0
    C: int = 16
    N: int = 5
    hessian_iters: int = 10

    @property
    def layers(self) -> int:
        """The spaces' ``layers`` option: ``N`` cells in each of three stages (the layout of
        NAS-Bench-201, and of DARTS networks apart from their two reduction cells)."""
        return 3 * self.N

    def key(self) -> dict[str, Any]:
        """The settings as plain data."""
        return dict(vars(self))


def _batch(settings: ProxySettings) -> tuple[torch.Tensor, torch.Tensor, Any]:
    import torch

    from robustnas.data import load_dataset

    ds = load_dataset(settings.dataset, root=settings.data_root)
    if settings.n < 1 or settings.n > len(ds.train_y):
        raise UsageError(f"proxy batch size must be in 1..{len(ds.train_y)}, got {settings.n}")
    gen = torch.Generator().manual_seed(settings.seed)
    idx = torch.randperm(len(ds.train_y), generator=gen)[: settings.n]
    return ds.train_x[idx].float() / 255.0, ds.train_y[idx], ds


Cell = NB201Genotype | NAResGenotype


def load_cell(spec: Any) -> Cell:
    """A NARes architecture (``D1,W1,...`` string or genotype) or a NAS-Bench-201 cell."""
    if isinstance(spec, NAResGenotype) or is_nares_string(spec):
        return load_nares_genotype(spec, strict=False)
    return load_nb201_genotype(spec)


def _network(genotype: Cell, ds: Any, settings: ProxySettings) -> torch.nn.Module:
    """The freshly initialised network of ``genotype`` for dataset ``ds``, built by its
    space (``C`` and ``layers`` are ignored by spaces whose genotype fixes the network)."""
    from robustnas.space.spaces import space_of_genotype

    return space_of_genotype(genotype).network(
        genotype, C=settings.C, layers=settings.layers, num_classes=ds.num_classes,
        in_channels=ds.in_channels, mean=ds.mean, std=ds.std)


def measure_cell(genotype: Cell, x: torch.Tensor, y: torch.Tensor, ds: Any,
                 settings: ProxySettings,
                 proxies: Sequence[str] = PROXIES) -> dict[str, float]:
    """Proxies ``proxies`` of one cell's freshly initialised network on ``(x, y)``, each
    on its own network built with the same seed."""
    import torch

    from robustnas.tables.zero_cost import compute

    out = {}
    for name in proxies:
        torch.manual_seed(settings.seed)
        net = _network(genotype, ds, settings)
        out[name] = compute(name, net, x, y, ds.num_classes, **settings.key())
    return out


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{cell string: record}`` of a proxies file (empty when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            arch = record["arch"]  # a string form, never a file name
            cell = (load_nares_genotype(arch, strict=False) if is_nares_string(arch)
                    else NB201Genotype.from_string(arch))
            # A later line of the same cell adds proxies measured afterwards.
            out.setdefault(cell.to_string(), {}).update(record)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if n == len(path.read_text().splitlines()):
                break  # a line cut short by a kill: it is recomputed
            raise DataError(f"{path}:{n}: not a proxies record ({exc})") from None
    return out


def compute_proxies(cells: Iterable[Cell | str], out: str | Path,
                    settings: ProxySettings | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    proxies: Sequence[str] | None = None) -> dict[str, dict]:
    """Measure ``proxies`` (default :data:`PROXIES`) of every cell that lacks some in
    ``out`` and append them there (only the missing ones); returns all records.

    Refuses a file measured with different settings (mixing them would bias correlations).
    """
    settings = settings or ProxySettings()
    path = Path(out)
    done = read_results(path)
    for record in done.values():
        if record.get("settings") != settings.key():
            raise UsageError(f"{path} holds proxies measured with other settings "
                             f"({record.get('settings')}); use another file")
        break
    from robustnas.tables.zero_cost import proxy_names

    wanted = proxy_names(proxies)
    todo: list[tuple[Cell, list[str]]] = []
    queued: set[str] = set()
    for cell in cells:
        geno = load_cell(cell)
        have = done.get(geno.to_string(), {})
        missing = [p for p in wanted if p not in have]
        if missing and geno.to_string() not in queued:
            queued.add(geno.to_string())
            todo.append((geno, missing))
    if not todo:
        return done
    x, y, ds = _batch(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # drop a last line cut short by a kill before appending
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            path.write_bytes(raw[: raw.rfind(b"\n") + 1])
    with path.open("a") as handle:
        for i, (geno, missing) in enumerate(todo):
            record = {"arch": geno.to_string(),
                      **measure_cell(geno, x, y, ds, settings, missing),
                      "settings": settings.key()}
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            done.setdefault(geno.to_string(), {}).update(record)
            if progress is not None:
                progress(i + 1, len(todo))
    return done
