"""Search under ``torchrun --nproc_per_node N``: what each process does and what they share.

Every process builds the same supernet from the same seed (rank 0's parameters are then
broadcast, so they start bit-identical), reads the same global batch of training and of
validation images, and keeps its contiguous ``batch_size / N`` slice
(:class:`robustnas.data.DeviceLoader` shards, with the augmentation of the global batch).
Each process differentiates its shard's mean loss; the gradients of α and of the weights
are averaged over processes (:func:`robustnas.distributed.mean_over_processes`) before every
optimiser step, and in second order also the training gradient that builds the unrolled
weights w' and the vector of the finite-difference product, so that every process unrolls
to the same w' and steps with the same ε. Every process receives the same averaged bits and
runs the same optimiser, so α and the weights stay identical on all processes after every
step; :func:`check_ranks_agree` verifies that at every epoch end (a mismatch stops the run).

Batch norm. The supernet's batch norms have no affine parameters; they normalise with batch
statistics during search. With ``sync_bn: true`` (the default) those statistics are the
global batch's (:class:`robustnas.distributed.GlobalBatchNorm2d`, differentiable twice for
AdvRush, also on CUDA), so an N-process step is the step of one process on the global
batch, to floating-point rounding; running statistics are then identical on every process.
With ``sync_bn: false`` each process normalises with its shard's statistics (faster: no
collective per batch norm; the α gradient is then that of N smaller batches), and the
running statistics, which then differ, are averaged over processes before each evaluation
and checkpoint.

Log-normal Lipschitz sampling draws its noise from the global generator, which every
process seeds identically and advances identically (the data order and augmentation use
their own generators), so every process samples the same α in every step, as one process
on the global batch would; the resulting α gradients are averaged like any other.

A checkpoint holds every process's own running sums of the epoch so far and RNG state;
resuming with the same number of processes gives each process its own back, so that the
resumed run is bit-identical to an uninterrupted one, weights and logged metrics alike.

Only rank 0 writes (checkpoints, config, events, history, genotype, pictures) and runs the
end-of-epoch probes (Hessian eigenvalues, collapse guard), whose decision it broadcasts.
Metrics are summed over processes. A stop signal on any process stops all of them at the
same step boundary, after rank 0's checkpoint.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

from robustnas import distributed as D
from robustnas.errors import RobustnasError


class RanksDisagree(RobustnasError):
    """Processes of one search hold different α or weights (a bug; the run stops)."""


def add_step_sums(meters: dict[str, Any], y: torch.Tensor, logits: torch.Tensor,
                  loss: torch.Tensor, logs: dict[str, float]) -> None:
    """Add one step's sums to this process's epoch meters (loss and accuracy per image,
    regulariser logs per step), which :func:`reduce_meters` sums over processes."""
    n = y.shape[0]
    meters["n"] = meters.get("n", 0) + n
    meters["loss"] = meters.get("loss", 0.0) + float(loss) * n
    meters["correct"] = meters.get("correct", 0) + int((logits.argmax(1) == y).sum())
    for key, value in logs.items():
        meters[f"sum/{key}"] = meters.get(f"sum/{key}", 0.0) + value
        meters[f"count/{key}"] = meters.get(f"count/{key}", 0) + 1


def prepare_supernet(model: nn.Module, info: D.DistInfo, sync_bn: bool) -> nn.Module:
    """Global batch norm (``sync_bn``) and rank 0's parameters on every process."""
    if not info.enabled:
        return model
    if sync_bn:
        model = D.convert_global_batchnorm(model)
    D.broadcast_module(model, info)
    return model


def gradient_averager(info: D.DistInfo) -> Any:
    """A function mapping this process's gradients to their mean over processes."""
    if not info.enabled:
        return None

    def average(grads: list[torch.Tensor]) -> list[torch.Tensor]:
        return D.mean_over_processes(grads, info)
    return average


def average_running_statistics(model: nn.Module, info: D.DistInfo) -> None:
    """Average batch-norm running statistics over processes (per-shard batch norm)."""
    if not info.enabled:
        return
    buffers = [b for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
               for b in (m.running_mean, m.running_var) if b is not None]
    if buffers:
        with torch.no_grad():
            for b, mean in zip(buffers, D.mean_over_processes(buffers, info)):
                b.copy_(mean)


def reduce_meters(meters: dict[str, float], info: D.DistInfo) -> dict[str, float]:
    """An epoch's running sums over all processes (``seconds``: the slowest process)."""
    if not info.enabled:
        return meters
    return reduce_saved_meters(D.gather_objects(meters, info))


def reduce_saved_meters(every: list[dict[str, float]]) -> dict[str, float]:
    """The sums of several processes' running sums (``seconds``: the largest)."""
    if len(every) == 1:
        return dict(every[0])
    total: dict[str, float] = {}
    for own in every:
        for key, value in own.items():
            if key == "seconds":
                total[key] = max(total.get(key, 0.0), value)
            else:
                total[key] = total.get(key, 0) + value
    return total


def _fingerprint(tensors: list[torch.Tensor]) -> str:
    digest = hashlib.sha1()
    for t in tensors:
        digest.update(t.detach().to("cpu", copy=True).contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()


def check_ranks_agree(model: nn.Module, info: D.DistInfo, epoch: int) -> None:
    """Raise :class:`RanksDisagree` unless every process holds the same α and weights."""
    if not info.enabled:
        return
    prints = D.gather_objects((_fingerprint(model.arch_parameters()),
                               _fingerprint(model.weights())), info)
    for what, index in (("α", 0), ("weights", 1)):
        if len({p[index] for p in prints}) > 1:
            raise RanksDisagree(f"after epoch {epoch}, the {info.world_size} processes hold "
                                f"different {what}; this is a bug in robustnas, please report it")
