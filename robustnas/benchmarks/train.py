"""Retraining-step throughput: a PGD-7 adversarial training step against its eager fp32 form.

One step is exactly what :class:`robustnas.train.trainer.Trainer` does per batch: the
objective's :meth:`~robustnas.train.objectives.base.Objective.compute` (for ``pgd``: the
clean-metric forward in eval mode, the 7-step attack, the training forward), backward,
gradient-norm clipping at 5 and an SGD step, with the objective's default settings (from
:class:`robustnas.train.config.RetrainConfig`). Rows, all timed in this process with
:func:`robustnas.benchmarks.timing.time_interleaved` (medians with min-max, ratios
paired per round, CPU time on a CPU, each row's own peak memory):

- ``<objective> fp32``: the eager fp32 baseline every ratio refers to;
- ``<objective> channels_last`` (every device);
- ``<objective> bf16``, ``<objective> bf16+channels_last`` (CUDA only: autocast is
  CUDA-only in :func:`robustnas.runtime.autocast_factory`, so on a CPU these rows are
  skipped with a note);
- ``standard fp32``: a standard-training step (objective ``none`` with DARTS' auxiliary head
  and drop-path) for reference;
- ``X+reference`` (``reference`` alone: ``fp32+reference``): row X with the retraining
  network as it ran before issue 11 (:mod:`robustnas.benchmarks.reference`: the drop-path
  of two full-size operations, ``x / keep * mask``, where today's does one, and plain 1×1
  stride-2 convolutions in FactorizedReduce). A row measured with its reference twin gets
  a paired ``vs_own_reference`` ratio. Objectives without drop-path (``pgd``, ``trades``
  and ``fgsm-rs`` by default) differ from their reference only by FactorizedReduce's
  layer-size check, so their ratio is close to a same-code comparison and shows the noise of
  the measurement; ``standard`` uses drop-path 0.2.

Inputs are random images in [0, 1] (3×32×32, 10 classes by default), reused every step.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robustnas.benchmarks.reference import reference_drop_path, use_plain_strided_convs
from robustnas.benchmarks.timing import (
    CPU_RATIO_NOTE,
    format_table,
    memory_note,
    memory_text,
    ratio_text,
    time_interleaved,
    timing_columns,
    timing_json,
    timing_row,
    variant_memory,
)
from robustnas.errors import UsageError
from robustnas.runtime import autocast_factory, resolve_device
from robustnas.space.darts.catalogue import load_genotype
from robustnas.space.darts.network import Network
from robustnas.space.models import build_architecture, is_handcrafted_spec
from robustnas.train.config import RetrainConfig
from robustnas.train.objectives import OBJECTIVES
from robustnas.train.setup import build_optimizer

CUDA_VARIANTS = ("bf16", "channels_last", "bf16+channels_last")


def _retrain_config(objective: str, args: argparse.Namespace) -> RetrainConfig:
    """The retraining options of one row (objective defaults, benchmark sizes)."""
    options: dict[str, Any] = {"adversarial": objective, "C": args.channels,
                               "layers": args.layers, "batch_size": args.batch_size,
                               "eps": args.eps, "device": "cpu"}
    if args.steps is not None and objective != "none":
        options["steps"] = args.steps
    config = RetrainConfig(**options)
    config.validate()
    return config


def make_step(objective: str, amp: bool, channels_last: bool, args: argparse.Namespace,
              device: torch.device, reference: bool = False
              ) -> tuple[Callable[[], None], RetrainConfig]:
    """Build the network, optimiser and objective of one row; return a closure doing one
    full training step (as the trainer's) and the row's config. ``reference``: the network
    and step of before issue 11 (:mod:`robustnas.benchmarks.reference`)."""
    config = _retrain_config(objective, args)
    torch.manual_seed(0)
    if is_handcrafted_spec(args.genotype):  # e.g. preact-resnet18, wrn-34-10: no cells
        if reference:
            raise UsageError(f"variant reference applies to DARTS cell networks, not "
                             f"{args.genotype!r}")
        config.auxiliary_weight = 0.0
        net = build_architecture(args.genotype, num_classes=args.classes, in_channels=3)
    else:
        genotype = load_genotype(args.genotype)
        net = Network(genotype, C=config.C, num_classes=args.classes, layers=config.layers,
                      auxiliary=config.auxiliary_weight > 0, in_channels=3)
        net.drop_path_prob = config.drop_path
    net.to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net.to(memory_format=fmt)
    if reference:
        use_plain_strided_convs(net)
    optimizer = build_optimizer(config, net)
    objective_obj = OBJECTIVES.get(objective)(config.objective_settings(),
                                              autocast_factory(device, amp))
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch_size, 3, args.image_size, args.image_size)
    x = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=fmt)
    y = torch.randint(0, args.classes, (args.batch_size,), generator=gen).to(device)
    path: Callable[[], Any] = reference_drop_path if reference else contextlib.nullcontext

    def step() -> None:
        with path():
            net.train()
            out = objective_obj.compute(net, x, y)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()

    return step, config


def _row_settings(name: str, objective: str) -> tuple[str, bool, bool, bool]:
    """(objective, amp, channels_last, reference) of a variant name."""
    amp = channels_last = reference = standard = False
    for part in name.split("+"):
        if part == "bf16":
            amp = True
        elif part == "channels_last":
            channels_last = True
        elif part == "reference":
            reference = True
        elif part == "standard":
            standard = True
        elif part != "fp32":
            raise UsageError(f"unknown benchmark variant {name!r} (choose from fp32, "
                             f"{', '.join(CUDA_VARIANTS)}, standard, reference, joined "
                             "with +)")
    return ("none" if standard else objective), amp, channels_last, reference


def _variants(args: argparse.Namespace, device: torch.device) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    if args.variants == "auto":
        names = ["fp32", "channels_last"]
        if device.type == "cuda":
            names += ["bf16", "bf16+channels_last"]
        else:
            notes.append("bf16 variants skipped: bf16 autocast is CUDA-only "
                         "(robustnas.runtime.autocast_factory); run on a GPU to measure them")
        names += ["standard"]
        if not is_handcrafted_spec(args.genotype):  # the reference is a DARTS-cell network
            names += ["standard+reference"]
        return names, notes
    asked = [n.strip() for n in args.variants.split(",") if n.strip()]
    names = ["fp32"] + [n for n in dict.fromkeys(asked) if n != "fp32"]
    for name in names:
        if _row_settings(name, "pgd")[1] and device.type != "cuda":
            raise UsageError(f"variant {name!r} needs a CUDA device (bf16 autocast is "
                             f"CUDA-only); got --device {device}")
    return names, notes


def _label(name: str, objective: str, config: RetrainConfig) -> str:
    parts = [p for p in name.split("+") if p not in ("standard", "fp32")]
    rest = "+".join(parts) if parts else "fp32"
    if "standard" in name.split("+"):
        return f"standard {rest}"
    attack = f"-{config.steps}" if objective in ("pgd", "trades") else ""
    return f"{objective}{attack} {rest}"


def own_reference(name: str, names: list[str]) -> str | None:
    """The listed reference twin of row ``name`` (same settings with ``reference``), if any;
    ``fp32`` is the row with no modifier, so ``reference`` is the twin of ``fp32``."""
    objective, amp, channels_last, reference = _row_settings(name, "pgd")
    if reference:
        return None
    for other in names:
        if _row_settings(other, "pgd") == (objective, amp, channels_last, True):
            return other
    return None


def build_variant(name: str, args: argparse.Namespace,
                  device: torch.device) -> Callable[[], None]:
    """The step closure of row ``name`` (module level: memory probes pickle it)."""
    row_objective, amp, channels_last, reference = _row_settings(name, _objective(args))
    return make_step(row_objective, amp, channels_last, args, device, reference)[0]


def _objective(args: argparse.Namespace) -> str:
    return str(args.objective).strip().lower().replace("_", "-")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time the adversarial training step and its variants against the eager fp32 one."""
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    objective = _objective(args)
    OBJECTIVES.get(objective)  # unknown objective: UsageError listing the choices
    for name in ("batch_size", "warmup", "iters", "rounds"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    names, notes = _variants(args, device)
    steps: dict[str, Callable[[], None]] = {}
    memory: dict[str, dict[str, float | None]] = {}
    configs: dict[str, RetrainConfig] = {}
    labels: dict[str, str] = {}
    for name in names:
        row_objective, amp, channels_last, reference = _row_settings(name, objective)
        step, config = make_step(row_objective, amp, channels_last, args, device, reference)
        if not args.no_memory:
            memory[name] = variant_memory(build_variant, name, args, device)
        label = _label(name, row_objective, config)
        steps[label], configs[label], labels[name] = step, config, label
    timings = time_interleaved(steps, device, args.warmup, args.iters, args.rounds)
    base = labels["fp32"]
    ratio = "speed_vs_fp32"
    rows = []
    for name in names:
        label = labels[name]
        twin = own_reference(name, names)
        rows.append({"variant": label,
                     **timing_row(timings, label, base, device, args.batch_size, ratio),
                     "vs_own_reference": "" if twin is None else
                     ratio_text(timings.speedup(label, labels[twin])),
                     "own_reference_cpu": "" if twin is None else
                     ratio_text(timings.cpu_speedup(label, labels[twin])),
                     "own_mem_mb": memory_text(memory.get(name)),
                     "raw": timing_json(timings, label, base) | {"memory": memory.get(name)}})
    columns = ["variant", *timing_columns(device, ratio)]
    notes.insert(0, "times: median over rounds (min-max); ratios: per-round paired "
                    "fp32/variant wall time, median (min-max)")
    if any(r["vs_own_reference"] for r in rows):
        columns.append("vs_own_reference")
        notes.append("vs_own_reference: paired speed against the same row with the network "
                     "of before issue 11 (drop-path x / keep * mask, plain strided 1x1 convs "
                     "in FactorizedReduce); without drop-path the two differ only by "
                     "FactorizedReduce's layer-size check")
        if device.type == "cpu":
            columns.append("own_reference_cpu")
            notes.append(CPU_RATIO_NOTE)
    if not args.no_memory:
        columns.append("own_mem_mb")
        notes.append(memory_note(device))
    main_config = configs[base]
    return {
        "benchmark": "train",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(),
        "config": {"genotype": args.genotype, "objective": objective,
                   "channels": args.channels, "layers": args.layers,
                   "batch_size": args.batch_size, "image_size": args.image_size,
                   "attack_steps": main_config.steps, "eps": main_config.eps,
                   "step_size": main_config.step_size, "warmup": args.warmup,
                   "iters": args.iters, "rounds": args.rounds},
        "notes": notes,
        "rows": rows,
        "table": format_table(rows, columns) + "".join(f"\nnote: {n}" for n in notes),
    }
