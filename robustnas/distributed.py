"""Multi-process runs with ``torch.distributed`` (launched by ``torchrun``): retraining (DDP)
and search (:mod:`robustnas.search.parallel`).

The same command runs alone or under ``torchrun --nproc_per_node N``: the launcher's
``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` variables select distributed mode. Each process
drives one device (``cuda:LOCAL_RANK`` with NCCL, or the CPU with gloo), sees a shard of
every global batch, and gradients are averaged over processes (retraining: by
DistributedDataParallel; search: by :func:`mean_over_processes`, because it differentiates
with ``torch.autograd.grad`` and twice for AdvRush, which DDP's hooks do not cover). Metrics are
summed over processes with ``all_reduce``; only rank 0 writes files.

Batch norm in retraining: by default every process normalises with the statistics of its
own shard (plain DDP, as in most multi-GPU training; BN running statistics follow rank 0, which DDP
broadcasts). With ``sync_bn`` the statistics are those of the global batch
(:class:`torch.nn.SyncBatchNorm` on CUDA; :class:`GlobalBatchNorm2d` below with gloo on CPU,
since SyncBatchNorm has no CPU kernels), which makes an N-process step equal to a
single-process step on the same global batch up to floating-point rounding.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from robustnas.errors import UsageError
from robustnas.runtime import resolve_device


@dataclass
class DistInfo:
    """Where this process stands in the job (world size 1 when not distributed)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name} must be an integer, got {raw!r}") from None


def dist_info_from_env() -> DistInfo:
    """Read the torchrun variables (WORLD_SIZE, RANK, LOCAL_RANK)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"inconsistent WORLD_SIZE={world} RANK={rank}")
    return DistInfo(world_size=world, rank=rank, local_rank=local)


def setup_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Pick this process's device and, under torchrun, join the process group.

    ``auto``/``cuda`` become ``cuda:LOCAL_RANK`` in a distributed CUDA job; the backend is
    NCCL on CUDA and gloo on the CPU. A group that already exists (e.g. set up by a
    notebook) is used as it is and left open.
    """
    info = dist_info_from_env()
    if not info.enabled:
        return info, resolve_device(device_name)
    if device_name in ("auto", "", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
    elif device_name in ("auto", ""):
        device = torch.device("cpu")
    else:
        device = resolve_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                world_size=info.world_size, rank=info.rank)
        info.owns_group = True
    elif dist.get_world_size() != info.world_size:
        raise UsageError("the existing process group does not match WORLD_SIZE")
    return info, device


def teardown_distributed(info: DistInfo) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
        info.owns_group = False


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``values`` over processes (returns a new tensor; identity when alone)."""
    values = values.detach().clone()
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def any_process(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every process when ``flag`` is true on at least one."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj``, in rank order (a one-element list when alone)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every process (``obj`` itself when alone)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers into ``module`` on every process."""
    if not info.enabled:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def mean_over_processes(tensors: list[torch.Tensor], info: DistInfo) -> list[torch.Tensor]:
    """The mean of each of ``tensors`` (gradients, batch-norm statistics) over processes, in
    one ``all_reduce`` per dtype.

    Every process receives the same bits (the collective reduces each element once), so
    optimisers fed with averaged gradients keep parameters identical across processes.
    """
    if not info.enabled or not tensors:
        return tensors
    out: list[torch.Tensor] = list(tensors)
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, t in enumerate(tensors):
        by_dtype.setdefault(t.dtype, []).append(i)
    for indices in by_dtype.values():
        flat = torch.cat([tensors[i].reshape(-1) for i in indices])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(info.world_size)
        offset = 0
        for i in indices:
            n = tensors[i].numel()
            out[i] = flat[offset:offset + n].view_as(tensors[i])
            offset += n
    return out


def barrier(info: DistInfo) -> None:
    """Wait for all processes (no-op when alone)."""
    if info.enabled:
        dist.barrier()


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over processes: every output depends on every input, so the
    gradient of each input is the sum of the output gradients of all processes."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


def differentiable_all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over processes, with gradients flowing back to every process."""
    return _AllReduceSum.apply(tensor)


def _global_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of ``x`` (N, C, H, W) over all processes' batches,
    and the global count; differentiable (see :class:`GlobalBatchNorm2d`)."""
    world, rank = dist.get_world_size(), dist.get_rank()
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    channels = x.shape[1]
    count = x.numel() // channels
    if count:
        local_mean = xf.mean((0, 2, 3))
        local_m2 = (xf - local_mean.view(1, -1, 1, 1)).square().sum((0, 2, 3))
    else:  # an empty shard (a short last batch) contributes nothing; the zeros stay on
        # x's graph so that, under autograd, this process joins the backward collective too
        local_mean = local_m2 = xf.sum((0, 2, 3))
    row = torch.stack([torch.full_like(local_mean, float(count)), local_mean, local_m2])
    table = torch.cat([xf.new_zeros(rank, 3, channels), row[None],
                       xf.new_zeros(world - rank - 1, 3, channels)])
    table = differentiable_all_reduce(table)
    counts = table[:, 0, :1]  # (world, 1)
    total = counts.sum()
    mean = (counts * table[:, 1]).sum(0) / total
    m2 = table[:, 2].sum(0) + (counts * (table[:, 1] - mean).square()).sum(0)
    return mean, m2 / total, total


class _LocalStatistics(threading.local):
    active = False


_LOCAL_STATISTICS = _LocalStatistics()


@contextlib.contextmanager
def local_batch_statistics() -> Iterator[None]:
    """Within the block, :class:`GlobalBatchNorm2d` layers use this process's batch only.

    For work that one process does alone (rank 0's end-of-epoch probes): a collective that
    the other processes never join would wait forever.
    """
    previous = _LOCAL_STATISTICS.active
    _LOCAL_STATISTICS.active = True
    try:
        yield
    finally:
        _LOCAL_STATISTICS.active = previous


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span all processes; works with gloo on CPU.

    Each process computes its shard's count, mean and centred sum of squares per channel
    (two passes over its own data); one differentiable ``all_reduce`` of a table with one
    row per process (zeros elsewhere, so the sum is exact and bit-identical everywhere)
    gives every process all rows, which it combines in rank order (Chan et al.'s parallel
    variance), so gradients flow through the global statistics as in
    :class:`torch.nn.SyncBatchNorm`: one collective forward and one backward per layer.
    Running statistics use the unbiased global variance. Wherever batch statistics are used
    (training, or any mode without running statistics) they are global; with running
    statistics outside training, inside :func:`local_batch_statistics`, or when no process
    group is active, it is a plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_statistics = self.training or not self.track_running_stats
        if (not batch_statistics or _LOCAL_STATISTICS.active
                or not (dist.is_available() and dist.is_initialized())):
            return super().forward(x)
        mean, var, total = _global_moments(x)
        centered = x - mean.view(1, -1, 1, 1).to(x.dtype)
        if self.training and self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                n = float(total)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        out = centered * torch.rsqrt(var + self.eps).view(1, -1, 1, 1).to(x.dtype)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace BatchNorm layers with global-batch ones (SyncBatchNorm on CUDA)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _to_global_batchnorm(model)


def convert_global_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d with :class:`GlobalBatchNorm2d`, on any device.

    Unlike SyncBatchNorm it is built from differentiable operations only, so it can be
    differentiated twice (AdvRush differentiates input gradients with respect to α).
    """
    return _to_global_batchnorm(model)


def _to_global_batchnorm(module: nn.Module) -> nn.Module:
    if type(module) is nn.BatchNorm2d:
        new = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum,
                                module.affine, module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new.to(next(module.buffers(), torch.empty(0)).device)
    for name, child in module.named_children():
        converted = _to_global_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
