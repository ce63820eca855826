"""Search-step throughput: first order (the eager fp32 baseline), second order, each
regulariser, and on CUDA bf16 autocast / channels_last, all in one process."""

from __future__ import annotations

import argparse
import contextlib
import platform
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robustnas.benchmarks.timing import (
    format_table,
    peak_memory_mb,
    peak_rss_mb,
    time_interleaved,
)
from robustnas.runtime import resolve_device
from robustnas.search.architect import Architect, weight_step
from robustnas.search.objective import RegularizerSet
from robustnas.space.supernet import SuperNet


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``robustnas bench search``."""
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", default="auto",
                   help="comma list of first,second,advrush,lipschitz,bf16,channels_last,"
                        "bf16+channels_last (auto: all that apply to the device)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")


def _variant_settings(name: str) -> dict[str, Any]:
    settings = {"order": 1, "regularizer": "none", "amp": False, "channels_last": False}
    for part in name.split("+"):
        if part == "second":
            settings["order"] = 2
        elif part in ("advrush", "lipschitz"):
            settings["regularizer"] = part
        elif part == "bf16":
            settings["amp"] = True
        elif part == "channels_last":
            settings["channels_last"] = True
        elif part != "first":
            raise ValueError(f"unknown benchmark variant {name!r}")
    return settings


def make_step(settings: dict[str, Any], args: argparse.Namespace,
              device: torch.device) -> Callable[[], None]:
    """Build a supernet and return a closure doing one full search step (α then w)."""
    torch.manual_seed(0)
    model = SuperNet(C=args.channels, num_classes=args.classes, layers=args.layers)
    regs = RegularizerSet(settings["regularizer"],
                          {"advrush": {"start_epoch": 0}} if settings["regularizer"] == "advrush"
                          else None)
    regs.setup(model)
    if regs.applies("arch", 0) != (settings["regularizer"] != "none"):
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every variant against the first-order fp32 eager baseline."""
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.variants == "auto":
        names = ["first", "second", "advrush", "lipschitz"]
        if device.type == "cuda":
            names += ["bf16", "channels_last", "bf16+channels_last"]
    else:
        names = ["first"] + [n for n in args.variants.split(",") if n and n != "first"]
    steps, memory = {}, {}
    for name in names:
        settings = _variant_settings(name)
        if settings["regularizer"] != "none":
            from robustnas.search.regularizers import REGULARIZERS
            if settings["regularizer"] not in REGULARIZERS:
                continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        steps[name] = make_step(settings, args, device)
        steps[name]()
        # CPU has no per-variant peak counter: the process peak RSS after the variant's
        # first step is reported instead (cumulative: variants are built in order).
        memory[name] = peak_memory_mb(device) if device.type == "cuda" else peak_rss_mb()
    seconds = time_interleaved(steps, device, args.warmup, args.iters, args.rounds)
    base = seconds["first"]
    rows = [{"variant": name, "step_ms": f"{1000 * s:.1f}",
             "images_per_s": f"{args.batch_size / s:.1f}",
             "speed_vs_first_order": f"{base / s:.2f}x", "cost_vs_first_order": f"{s / base:.2f}x",
             "peak_mem_mb": "" if memory[name] is None else f"{memory[name]:.0f}"}
            for name, s in seconds.items()]
    return {
        "benchmark": "search",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(),
        "process_peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_mem": ("CUDA max_memory_allocated per variant" if device.type == "cuda" else
                     "process peak RSS after the variant's first step (cumulative)"),
        "config": {"channels": args.channels, "layers": args.layers,
                   "batch_size": args.batch_size, "image_size": args.image_size},
        "rows": rows,
        "table": format_table(rows, ["variant", "step_ms", "images_per_s",
                                     "speed_vs_first_order", "cost_vs_first_order",
                                     "peak_mem_mb"]),
    }
