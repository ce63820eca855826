"""Search-step throughput: the reference first-order step (the eager fp32 baseline of the
original evaluation, :meth:`SuperNet.use_reference_path`), the default first-order step,
second order, each regulariser, each search relaxation (``pc-darts``, ``gdas``:
:mod:`robustnas.space.relaxations`), channels_last, and on CUDA bf16 autocast, all timed in
one process. ``X+reference`` builds variant X on the reference path; a variant measured with
its reference twin gets a paired ``vs_own_reference`` ratio. A relaxation variant is the
first-order step on a supernet with that relaxation (``pc-darts+second`` for its second
order); combinations the search refuses (``gdas+second``) are refused here too.

Times and ratios follow :mod:`robustnas.benchmarks.timing`: medians over interleaved
rounds with their min-max, ratios paired per round against the first variant listed (the
baseline), CPU time beside wall time on a CPU, and each variant's own peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

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
from robustnas.runtime import resolve_device
from robustnas.search.architect import Architect, weight_step
from robustnas.search.objective import RegularizerSet
from robustnas.space.darts.supernet import SuperNet

#: The relaxations a variant may name (``first`` is DARTS' own, the default).
RELAXATION_VARIANTS = ("pc-darts", "gdas")


def _regularizer_names() -> list[str]:
    """Every registered regulariser (advrush, lipschitz, jacobian, beta, sdarts-rs, ...)."""
    from robustnas.search.regularizers import REGULARIZERS

    return [n for n in REGULARIZERS.names() if n != "none"]


def _variant_settings(name: str) -> dict[str, Any]:
    settings = {"order": 1, "regularizer": "none", "amp": False, "channels_last": False,
                "reference": False, "relaxation": "darts"}
    for part in name.split("+"):
        if part in RELAXATION_VARIANTS:
            settings["relaxation"] = part
        elif part == "second":
            settings["order"] = 2
        elif part in _regularizer_names():
            settings["regularizer"] = part
        elif part == "bf16":
            settings["amp"] = True
        elif part == "channels_last":
            settings["channels_last"] = True
        elif part == "reference":
            settings["reference"] = True
        elif part != "first":
            raise ValueError(f"unknown benchmark variant {name!r}")
    return settings


def make_step(settings: dict[str, Any], args: argparse.Namespace,
              device: torch.device) -> Callable[[], None]:
    """Build a supernet and return a closure doing one full search step (α then w)."""
    torch.manual_seed(0)
    model = SuperNet(C=args.channels, num_classes=args.classes, layers=args.layers,
                     relaxation=settings["relaxation"])
    if settings["reference"]:
        model.use_reference_path()
    regs = RegularizerSet(settings["regularizer"],
                          {"advrush": {"start_epoch": 0}} if settings["regularizer"] == "advrush"
                          else None)
    regs.setup(model)
    active = regs.applies("arch", 0) or regs.applies("weights", 0) or regs.perturbs(0)
    if active != (settings["regularizer"] != "none"):
        # A term switched off by its schedule would time a plain step under its name.
        raise RuntimeError(f"regularizer {settings['regularizer']} is not active at epoch 0")
    model.to(device)
    fmt = torch.channels_last if settings["channels_last"] else torch.contiguous_format
    model.to(memory_format=fmt)
    w_opt = torch.optim.SGD(model.weights(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-4, betas=(0.5, 0.999),
                             weight_decay=1e-3)
    autocast: Callable[[], Any] = contextlib.nullcontext
    if settings["amp"]:
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    criterion = nn.CrossEntropyLoss()
    architect = Architect(model, a_opt, w_opt, regs, criterion, order=settings["order"],
                          autocast=autocast)
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch_size, 3, args.image_size, args.image_size)
    x_t = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=fmt)
    x_v = torch.rand(shape, generator=gen).to(device).contiguous(memory_format=fmt)
    y_t = torch.randint(0, args.classes, (args.batch_size,), generator=gen).to(device)
    y_v = torch.randint(0, args.classes, (args.batch_size,), generator=gen).to(device)

    def step() -> None:
        architect.step(x_t, y_t, x_v, y_v, 0.025, epoch=0, step=0, total_epochs=1)
        weight_step(model, w_opt, x_t, y_t, criterion, 5.0, regs, autocast=autocast)

    return step


def build_variant(name: str, args: argparse.Namespace,
                  device: torch.device) -> Callable[[], None]:
    """The step closure of benchmark variant ``name`` (module level: memory probes pickle it)."""
    return make_step(_variant_settings(name), args, device)


def _names(args: argparse.Namespace, device: torch.device) -> list[str]:
    if args.variants == "auto":
        names = ["reference", "first", "channels_last", "second", "advrush", "lipschitz"]
        if device.type == "cuda":
            names += ["bf16", "bf16+channels_last"]
    else:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        if not names:
            raise UsageError("--variants lists no variant")
    for name in names:
        try:
            _variant_settings(name)
        except ValueError:
            raise UsageError(f"unknown benchmark variant {name!r} (choose from first, second, "
                             "bf16, channels_last, reference, "
                             f"{', '.join(RELAXATION_VARIANTS)}, a regulariser "
                             f"({', '.join(_regularizer_names())}), joined with +)") from None
        settings = _variant_settings(name)
        if settings["amp"] and device.type != "cuda":
            raise UsageError(f"variant {name!r} needs CUDA (bf16 autocast is CUDA-only here)")
        _check_relaxation(name, settings, args)
    return list(dict.fromkeys(names))


def _check_relaxation(name: str, settings: dict[str, Any], args: argparse.Namespace) -> None:
    """Refuse, as the search does, a relaxation variant that cannot work (UsageError)."""
    from robustnas.space.relaxations import make_relaxation

    try:
        make_relaxation(settings["relaxation"]).check_search(
            order=settings["order"], regularizers=[settings["regularizer"]], C=args.channels)
    except UsageError as exc:
        raise UsageError(f"variant {name!r}: {exc}") from None


def _own_reference(name: str, steps: dict[str, Any]) -> str | None:
    """The measured reference twin of variant ``name`` (``first`` → ``reference``,
    ``second`` → ``second+reference``), if any."""
    parts = [p for p in name.split("+") if p != "first"]
    if "reference" in parts:
        return None
    for candidate in ("+".join(parts + ["reference"]), "+".join(["reference"] + parts)):
        key = candidate if parts else "reference"
        if key in steps:
            return key
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every variant against the first-order fp32 eager baseline (paired per round)."""
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    for key in ("channels", "layers", "batch_size", "image_size", "iters", "rounds"):
        if getattr(args, key) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.classes < 2:
        raise UsageError("--warmup must be >= 0 and --classes >= 2")
    names = _names(args, device)
    baseline = names[0]  # the first variant listed (auto: the reference first-order step)
    steps: dict[str, Callable[[], None]] = {}
    memory: dict[str, dict[str, float | None]] = {}
    for name in names:
        settings = _variant_settings(name)
        if settings["regularizer"] != "none":
            from robustnas.search.regularizers import REGULARIZERS
            if settings["regularizer"] not in REGULARIZERS:
                continue
        steps[name] = build_variant(name, args, device)  # bad options fail here, in-process
        if not args.no_memory:
            memory[name] = variant_memory(build_variant, name, args, device)
    timings = time_interleaved(steps, device, args.warmup, args.iters, args.rounds)
    ratio = f"speed_vs_{baseline}"
    rows = []
    for name in steps:
        row = {"variant": name,
               **timing_row(timings, name, baseline, device, args.batch_size, ratio)}
        own_ref = _own_reference(name, steps)
        row["vs_own_reference"] = "" if own_ref is None else \
            ratio_text(timings.speedup(name, own_ref))
        row["own_reference_cpu"] = "" if own_ref is None else \
            ratio_text(timings.cpu_speedup(name, own_ref))
        row["own_mem_mb"] = memory_text(memory.get(name))
        row["raw"] = timing_json(timings, name, baseline) | {"memory": memory.get(name)}
        rows.append(row)
    columns = ["variant", *timing_columns(device, ratio)]
    notes = ["times: median over rounds (min-max); ratios: per-round paired "
             f"{baseline}/variant wall time, median (min-max)"]
    if any(r["vs_own_reference"] for r in rows):
        columns.append("vs_own_reference")
        notes.append("vs_own_reference: paired speed against the same variant built with "
                     "SuperNet.use_reference_path() (the original evaluation: every op, "
                     "Python sum, caller's layout, parameter lists walked every call)")
        if device.type == "cpu":
            columns.append("own_reference_cpu")
            notes.append(CPU_RATIO_NOTE)
    if not args.no_memory:
        columns.append("own_mem_mb")
        notes.append(memory_note(device))
    return {
        "benchmark": "search",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(),
        "config": {"channels": args.channels, "layers": args.layers,
                   "batch_size": args.batch_size, "image_size": args.image_size,
                   "warmup": args.warmup, "iters": args.iters, "rounds": args.rounds},
        "notes": notes,
        "rows": rows,
        "table": format_table(rows, columns) + "".join(f"\nnote: {n}" for n in notes),
    }
