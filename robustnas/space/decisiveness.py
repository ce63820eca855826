"""How decisive a derived genotype is: is softmax(α) telling the operations apart at all?

A genotype is always derivable, even from an α that never moved; it then looks like a
result but is noise. Two measures, per cell type, on the weights the derivation uses:

* **normalised entropy** of each edge's distribution over operations, averaged over edges:
  ``H(p) / log K`` (1 = uniform, 0 = one-hot).
* **margins** of the choices the derivation made, in units of the uniform weight ``1/K``
  (so they read the same for any number of operations): for each kept edge, the chosen
  operation's weight minus the next best non-``none`` operation's (``op margin``), and for
  each node with more than two inputs, its weaker kept edge's strength minus its strongest
  dropped edge's (``edge margin``; strength = best non-``none`` weight, as in DARTS).

The verdict uses the median op margin over both cells: below :data:`UNIFORM_MARGIN`
(10 % of the uniform weight) the genotype is *indistinguishable from a uniform α* and a
warning is given; below :data:`WEAK_MARGIN` it is *weak*; otherwise *clear*. After the
original quickstart (6 epochs, Adam 3e-3) softmax(α) lay in 0.117–0.136 for K = 8: margins
of a few percent of 1/8, i.e. "indistinguishable".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

UNIFORM_MARGIN = 0.1
"""Median op margin (in units of 1/K) below which a genotype counts as uniform noise."""

WEAK_MARGIN = 0.5
"""Median op margin (in units of 1/K) below which a genotype counts as weakly decided."""


class UniformGenotypeWarning(UserWarning):
    """``run_search`` derived a genotype indistinguishable from a uniform α."""


@dataclass
class CellDecisiveness:
    """Decisiveness of one cell type's choices."""

    entropy: float
    op_margins: list[float]
    edge_margins: list[float]

    def to_dict(self) -> dict[str, Any]:
        """Rounded plain data (JSON-ready)."""
        return {"entropy": round(self.entropy, 6),
                "op_margins": [round(m, 4) for m in self.op_margins],
                "edge_margins": [round(m, 4) for m in self.edge_margins],
                "min_op_margin": round(min(self.op_margins), 4),
                "median_op_margin": round(statistics.median(self.op_margins), 4)}


@dataclass
class Decisiveness:
    """Decisiveness of a genotype's normal and reduction cells (see the module docstring)."""

    cells: dict[str, CellDecisiveness]
    num_ops: int

    @property
    def median_op_margin(self) -> float:
        """Median op margin over the kept edges of both cells (units of 1/K)."""
        return statistics.median(m for c in self.cells.values() for m in c.op_margins)

    @property
    def entropy(self) -> float:
        """Mean normalised entropy over the cells (1 = uniform)."""
        return sum(c.entropy for c in self.cells.values()) / len(self.cells)

    @property
    def verdict(self) -> str:
        """``uniform``, ``weak`` or ``clear``."""
        margin = self.median_op_margin
        if margin < UNIFORM_MARGIN:
            return "uniform"
        return "weak" if margin < WEAK_MARGIN else "clear"

    @property
    def warning(self) -> str | None:
        """A warning sentence when the genotype cannot be told from a uniform α."""
        if self.verdict != "uniform":
            return None
        return (f"the genotype is indistinguishable from a uniform α (median margin "
                f"{self.median_op_margin:.3f} of the uniform weight 1/{self.num_ops}, "
                f"normalised entropy {self.entropy:.4f}): its operations are noise; search "
                f"longer or with a larger arch_lr")

    def summary(self) -> str:
        """One terminal line."""
        parts = [f"{name}: entropy {c.entropy:.3f}, op margin min {min(c.op_margins):.2f} "
                 f"median {statistics.median(c.op_margins):.2f}"
                 for name, c in self.cells.items()]
        return (f"decisiveness {self.verdict} ({'; '.join(parts)}; margins in units of the "
                f"uniform weight 1/{self.num_ops}, entropy 1 = uniform)")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the genotype's provenance."""
        return {"verdict": self.verdict, "median_op_margin": round(self.median_op_margin, 4),
                "entropy": round(self.entropy, 6), "num_ops": self.num_ops,
                "margin_unit": f"1/{self.num_ops}",
                **{name: c.to_dict() for name, c in self.cells.items()}}

    def scalars(self) -> dict[str, float]:
        """TensorBoard scalars (``decisiveness/...``)."""
        out = {"decisiveness/median_op_margin": self.median_op_margin,
               "decisiveness/entropy": self.entropy}
        for name, c in self.cells.items():
            out[f"decisiveness/{name}_entropy"] = c.entropy
            out[f"decisiveness/{name}_min_op_margin"] = min(c.op_margins)
            out[f"decisiveness/{name}_median_op_margin"] = statistics.median(c.op_margins)
        return out


def cell_decisiveness(weights: torch.Tensor | Sequence[Sequence[float]],
                      primitives: Sequence[str], steps: int,
                      probs: torch.Tensor | None = None) -> CellDecisiveness:
    """Decisiveness of one cell's ``(edges x ops)`` derivation weights, derived as DARTS does.

    ``probs`` (default: ``weights``) are the per-edge distributions whose entropy is taken.
    Weights that are not probabilities (a sampler's derivation weights) are rescaled so that
    an edge's weights sum to 1 on average, which keeps the margins in units of ``1/K``.
    """
    w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
    k = w.shape[1]
    w = w / w.sum(dim=1).mean().clamp_min(1e-12)
    p = torch.as_tensor(probs if probs is not None else w, dtype=torch.float64).clamp_min(0)
    p = p / p.sum(dim=1, keepdim=True).clamp_min(1e-12)
    ent = -(p * p.clamp_min(1e-30).log()).sum(dim=1) / math.log(k)
    none_idx = list(primitives).index("none") if "none" in primitives else -1
    masked = w.clone()
    if none_idx >= 0:
        masked[:, none_idx] = -math.inf
    op_margins: list[float] = []
    edge_margins: list[float] = []
    start = 0
    for node in range(steps):
        n_in = node + 2
        rows = masked[start:start + n_in]
        top2 = rows.topk(min(2, rows.shape[1]), dim=1).values
        strength = top2[:, 0]
        order = sorted(range(n_in), key=lambda j: (-float(strength[j]), j))
        for j in order[:2]:
            second = float(top2[j, 1]) if top2.shape[1] > 1 else 0.0
            op_margins.append((float(top2[j, 0]) - second) * k)
        if n_in > 2:
            edge_margins.append((float(strength[order[1]]) - float(strength[order[2]])) * k)
        start += n_in
    return CellDecisiveness(float(ent.mean()), op_margins, edge_margins)


def decisiveness(weights: Mapping[str, Any], primitives: Sequence[str],
                 steps: int) -> Decisiveness:
    """Decisiveness of ``{"normal": w, "reduce": w}`` (rows: edges, columns: ``primitives``)."""
    return Decisiveness({name: cell_decisiveness(w, primitives, steps)
                         for name, w in weights.items()}, len(primitives))


def model_decisiveness(model: Any) -> Decisiveness:
    """Decisiveness of a supernet's current α (its space's rule, ``model.decisiveness()``)."""
    model = getattr(model, "module", model)
    return model.decisiveness()


def darts_decisiveness(model: Any) -> Decisiveness:
    """Decisiveness of a DARTS-style supernet with ``alpha_normal``/``alpha_reduce``, from the
    weights the derivation uses (softmax(α), or a sampler's derivation weights)."""
    sampler = model.arch_sampler
    weights = {"normal": sampler.derivation_weights(model.alpha_normal, False).detach().cpu(),
               "reduce": sampler.derivation_weights(model.alpha_reduce, True).detach().cpu()}
    probs = model.alpha_softmax()
    return Decisiveness({name: cell_decisiveness(w, model.primitives, model.steps,
                                                 probs=probs[name])
                         for name, w in weights.items()}, len(model.primitives))


def describe(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """The terminal line and the warning (or ``None``) of a provenance's ``decisiveness``."""
    cells = {name: CellDecisiveness(float(c["entropy"]), list(c["op_margins"]),
                                    list(c.get("edge_margins", [])))
             for name, c in record.items() if isinstance(c, Mapping) and "op_margins" in c}
    result = Decisiveness(cells, int(record["num_ops"]))
    return result.summary(), result.warning
