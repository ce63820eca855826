"""Per-operation Lipschitz constants λ_o of every candidate operation of a DARTS supernet.

Each operation is bounded by the product of its layers' constants (RACL: Dong et al.,
"Adversarially Robust Neural Architectures", 2020, method section):
``none`` 0; ``skip_connect`` 1 at stride 1; ReLU 1; BN max_c |γ_c|/√(running_var_c + eps)
(γ = 1 when not affine; the running variance stands in for the batch variance the layer
uses while training); convolutions their spectral norm on the feature map they see
(:mod:`robustnas.lipschitz.spectral`); pools as described there; ``sep_conv`` and
``dil_conv`` the product over their ReLU/conv/conv/BN layers. A FactorizedReduce applies
its two 1×1 stride-2 convolutions to disjoint pixel grids (even and odd offsets), so its
linear part has norm max(‖W₁‖₂, ‖W₂‖₂) exactly; times its BN.

:class:`SupernetLipschitz` finds every layer once (a probe forward records feature-map
sizes), groups layers of equal geometry (:mod:`robustnas.lipschitz.power_groups`), and on
:meth:`~SupernetLipschitz.update` runs a few batched power iterations per group with
persistent vectors, returning λ as a (cells × edges × ops) tensor without autograd (the
constants depend on the weights, which the α step does not train).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.lipschitz.power_groups import (
    BatchNormGroup,
    ConvGroup,
    DepthwiseGroup,
    LayerGroup,
    MatrixGroup,
    is_depthwise,
    is_pointwise,
)
from robustnas.lipschitz.shapes import layer_input_shapes
from robustnas.lipschitz.spectral import avg_pool_norm, max_pool_bound
from robustnas.space.darts.ops import FactorizedReduce, Identity, PoolBN, Zero

ZERO, ONE = 0, 1
Terms = list[list[int]]  # a product over terms, each the max over its slots


class SupernetLipschitz:
    """λ_o for every (cell, edge, op) of a :class:`~robustnas.space.darts.supernet.SuperNet`."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...],
                 pool_bound: str = "l2", seed: int = 0) -> None:
        if pool_bound not in ("l2", "paper"):
            raise UsageError(f"pool_bound must be l2 or paper, got {pool_bound!r}")
        self.model = model
        self.pool_bound = pool_bound
        self.seed = seed
        self.constants: list[float] = [0.0, 1.0]
        self.groups: dict[str, LayerGroup] = {}
        self._slots: dict[str, list[int]] = {}  # group key -> member index, filled at finalise
        self.shapes = self._probe(input_shape)
        cells = list(model.cells)
        n_edges = len(cells[0].edges)
        n_ops = len(cells[0].edges[0].ops)
        terms: list[list[list[Terms]]] = [
            [[self._terms(op) for op in edge.ops] for edge in cell.edges] for cell in cells]
        self.reduction = torch.tensor([bool(c.reduction) for c in cells])
        self._index = self._build_index(terms, len(cells), n_edges, n_ops)
        self._pending: dict[str, torch.Tensor] = {}
        self.initialized: set[str] = set()

    # -- discovery -----------------------------------------------------------------------
    def _probe(self, input_shape: tuple[int, ...]) -> dict[nn.Module, tuple[int, ...]]:
        kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
        layers = [m for cell in self.model.cells for m in cell.edges.modules()
                  if isinstance(m, kinds)]
        return layer_input_shapes(self.model, layers, input_shape)

    def _constant(self, value: float) -> int:
        self.constants.append(float(value))
        return len(self.constants) - 1

    def _member(self, group: LayerGroup, module: nn.Module) -> str:
        self.groups.setdefault(group.key, group)
        index = self.groups[group.key].add(module)
        return f"{group.key}#{index}"

    def _conv(self, conv: nn.Conv2d) -> str:
        shape = self.shapes[conv]
        if is_pointwise(conv):
            key = f"matrix:{conv.out_channels}x{conv.in_channels}"
            return self._member(self.groups.get(key) or MatrixGroup(
                key, (conv.out_channels, conv.in_channels)), conv)
        if is_depthwise(conv):
            geom = (tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding),
                    tuple(conv.dilation), tuple(shape[-2:]))
            key = "depthwise:" + ":".join("x".join(map(str, g)) for g in geom)
            return self._member(self.groups.get(key) or DepthwiseGroup(
                key, conv, tuple(shape[-2:])), conv)
        key = f"conv:{len(self.groups)}"
        return self._member(ConvGroup(key, conv, shape), conv)

    def _bn(self, bn: nn.BatchNorm2d) -> str:
        if bn.running_var is None:
            raise UsageError("lipschitz: BatchNorm without running statistics is not supported")
        key = f"bn:{bn.num_features}:{'affine' if bn.affine else 'plain'}"
        return self._member(self.groups.get(key) or BatchNormGroup(key), bn)

    def _terms(self, module: nn.Module) -> list[list[Any]]:
        """The op as a product of terms; a term is the max over slots (ints or member refs)."""
        if isinstance(module, Zero):
            return [[ZERO]]
        if isinstance(module, (Identity, nn.Identity, nn.ReLU)):
            return []
        if isinstance(module, PoolBN):
            return self._terms(module.pool) + (self._terms(module.bn) if module.bn else [])
        if isinstance(module, FactorizedReduce):
            return [[self._conv(module.conv_1), self._conv(module.conv_2)]] + \
                self._terms(module.bn)
        if isinstance(module, nn.Sequential):
            return [t for child in module for t in self._terms(child)]
        if isinstance(module, nn.Conv2d):
            return [[self._conv(module)]]
        if isinstance(module, nn.BatchNorm2d):
            return [[self._bn(module)]]
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            return [[self._constant(self._pool(module))]]
        raise UsageError(f"lipschitz: no Lipschitz rule for operation {type(module).__name__}")

    def _pool(self, pool: nn.Module) -> float:
        if self.pool_bound == "paper":
            return 1.0
        h, w = self.shapes[pool][-2:]
        k, s, p = (int(torch.tensor(v).flatten()[0]) for v in
                   (pool.kernel_size, pool.stride, pool.padding))
        if isinstance(pool, nn.MaxPool2d):
            return max_pool_bound(h, w, k, s, p)
        return avg_pool_norm(h, w, k, s, p, bool(pool.count_include_pad))

    def _build_index(self, terms: list, n_cells: int, n_edges: int, n_ops: int) -> torch.Tensor:
        offsets, total = {}, len(self.constants)
        for key, group in self.groups.items():
            offsets[key] = total
            total += len(group.members)

        def slot(ref: Any) -> int:
            if isinstance(ref, int):
                return ref
            key, index = ref.rsplit("#", 1)
            return offsets[key] + int(index)

        depth = max((len(t) for cell in terms for edge in cell for t in edge), default=1)
        width = max((len(term) for cell in terms for edge in cell for t in edge for term in t),
                    default=1)
        index = torch.full((n_cells, n_edges, n_ops, max(depth, 1), max(width, 1)), ONE)
        for c, cell in enumerate(terms):
            for e, edge in enumerate(cell):
                for o, op_terms in enumerate(edge):
                    for t, term in enumerate(op_terms):
                        ids = [slot(r) for r in term]
                        ids += [ids[0]] * (index.shape[-1] - len(ids))  # max is unchanged
                        index[c, e, o, t] = torch.tensor(ids)
        return index

    # -- evaluation ----------------------------------------------------------------------
    def _ensure_vectors(self, device: torch.device, init_iters: int) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        for key, group in self.groups.items():
            if isinstance(group, BatchNormGroup) or key in self.initialized:
                continue
            fresh = group.fresh_vector(generator, device)
            pending = self._pending.pop(key, None)
            if pending is not None and pending.shape == fresh.shape:
                group.vector = pending.to(device)
            else:
                group.vector = fresh
                group.compute(init_iters)
            self.initialized.add(key)

    def update(self, iters: int = 1, init_iters: int = 30) -> torch.Tensor:
        """Refresh all norms (``iters`` power iterations) and return λ (cells × edges × ops)."""
        param = next(self.model.parameters())
        self._ensure_vectors(param.device, init_iters)
        with torch.no_grad():
            parts = [torch.tensor(self.constants, device=param.device, dtype=torch.float32)]
            parts += [g.compute(iters).float() for g in self.groups.values()]
            values = torch.cat(parts)
            index = self._index.to(param.device)
            return values[index].amax(dim=-1).prod(dim=-1)

    def groups_summary(self) -> Iterator[tuple[str, int]]:
        """(group key, number of layers) for each group, for logs and tests."""
        for key, group in self.groups.items():
            yield key, len(group.members)

    # -- resume --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The persistent power-iteration vectors, by group."""
        return {k: g.vector.detach().cpu() for k, g in self.groups.items()
                if g.vector is not None}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Use saved vectors (those whose shape still matches) from the next update on."""
        self._pending = dict(state)
        self.initialized = set()
