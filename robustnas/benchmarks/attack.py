"""Attack throughput: PGD-k images/s against an eager fp32 forward+backward baseline, and
AutoAttack time per 1,000 images, all measured in one process on one model.

* Baseline (``clean_fwd_bwd``): one eval-mode fp32 forward of a clean batch plus the
  backward pass to the *input* (the work of one attack iteration), eager mode.
* ``pgd<k>``: :func:`robustnas.attacks.pgd_attack` with a random start, k steps of size
  ε/4, ε = 8/255, one restart (the evaluation default). Ideal cost ≈ k + 1 baseline passes
  (k gradient steps plus nothing else; scoring the result is not included).
* ``pgd<k>+channels_last``: the same PGD with model and inputs in channels_last (every
  device); on CUDA only also bf16 autocast, alone and with channels_last (on CPU these rows
  are skipped with a note: bf16 autocast on CPU is an emulation, not a speed-up).
* ``pgd<k>+reference``: the same PGD on the network as it ran before issue 11
  (:func:`robustnas.benchmarks.reference.use_plain_strided_convs`: FactorizedReduce's
  plain 1×1 convolutions; drop-path, issue 11's other change, is off in eval mode), so the
  ``pgd<k>`` row gets a paired ``vs_own_reference`` ratio (auto on every device).
* Times are medians over interleaved rounds with min-max, ratios paired per round, CPU time
  on a CPU (:mod:`robustnas.benchmarks.timing`); ``--memory`` adds each row's own peak.
* AutoAttack (when ``pyautoattack`` imports): the standard cascade (APGD-CE, APGD-T,
  FAB-T, Square; 100 iterations, 5000 queries unless ``--aa-steps``/``--aa-queries``
  say otherwise) timed once on ``--aa-images`` images and scaled linearly to 1,000.
  Its cost depends on the model: every part only attacks the images still classified
  correctly, so a weak model is cheap (APGD-CE fools everything; the later parts have
  nothing to do) and a robust one is expensive. The model here is randomly initialised,
  so we use *its own predictions as labels* (every image starts "correct"). The
  ``robust_after`` column says how many images survived: when all do (typical for a random
  DARTS network, whose logits barely move within 8/255), every part ran on every image,
  which is the expensive case of a fully robust model. ``--aa-parts`` also times each part
  alone on every image; their sum is that upper bound.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robustnas.attacks.pgd import pgd_attack
from robustnas.benchmarks.reference import use_plain_strided_convs
from robustnas.benchmarks.timing import (
    CPU_RATIO_NOTE,
    format_table,
    median,
    memory_note,
    memory_text,
    paired_ratios,
    ratio_text,
    synchronize,
    time_interleaved,
    timing_columns,
    timing_json,
    timing_row,
    variant_memory,
)
from robustnas.errors import UsageError
from robustnas.runtime import resolve_device
from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.network import Network
from robustnas.space.models import build_architecture, is_handcrafted_spec

EPS = 8 / 255


class _Autocast(nn.Module):
    """Runs the wrapped model under bf16 autocast; logits come back in fp32."""

    def __init__(self, inner: nn.Module, device_type: str) -> None:
        super().__init__()
        self.inner = inner
        self.device_type = device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.inner(x).float()


def _model(args: argparse.Namespace, device: torch.device, channels_last: bool,
           reference: bool = False) -> nn.Module:
    torch.manual_seed(0)
    if is_handcrafted_spec(args.genotype):  # e.g. wrn-34-10: no cells, no reference twin
        if reference:
            raise UsageError(f"variant reference applies to DARTS cell networks, not "
                             f"{args.genotype!r}")
        model = build_architecture(args.genotype, num_classes=args.classes, in_channels=3)
    else:
        model = Network(GENOTYPES.get(args.genotype), C=args.channels,
                        num_classes=args.classes, layers=args.layers, in_channels=3)
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if reference:
        use_plain_strided_convs(model)
    return model


def _check(args: argparse.Namespace) -> None:
    for name in ("channels", "layers", "batch_size", "image_size", "classes", "steps",
                 "rounds", "aa_steps", "aa_queries"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        raise UsageError("--warmup must be >= 0")
    if args.aa_images is not None and args.aa_images < 1:
        raise UsageError("--aa-images must be at least 1")
    if args.genotype not in GENOTYPES and not is_handcrafted_spec(args.genotype):
        raise UsageError(f"unknown genotype {args.genotype!r} (choose from: "
                         f"{', '.join(GENOTYPES.names())})")


VARIANTS = ("channels_last", "bf16", "bf16+channels_last", "reference")


def _variants(args: argparse.Namespace, device: torch.device) -> tuple[list[str], list[str]]:
    """Extra PGD variants to run, and notes about skipped ones."""
    if args.variants == "auto":
        wanted = list(VARIANTS) if device.type == "cuda" else ["channels_last", "reference"]
        if is_handcrafted_spec(args.genotype):  # the reference is a DARTS-cell network
            wanted = [v for v in wanted if v != "reference"]
        notes = [] if device.type == "cuda" else ["bf16 autocast variants skipped: CUDA only"]
    else:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
        notes = []
    for v in wanted:
        if v not in VARIANTS:
            raise UsageError(f"unknown variant {v!r} (choose from {', '.join(VARIANTS)})")
        if "bf16" in v and device.type != "cuda":
            raise UsageError(f"variant {v!r} needs CUDA (bf16 autocast is CUDA-only here)")
    return list(dict.fromkeys(wanted)), notes


def _inputs(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch_size, 3, args.image_size, args.image_size)
    x = torch.rand(shape, generator=gen).to(device)
    y = torch.randint(0, args.classes, (args.batch_size,), generator=gen).to(device)
    return x, y


def build_variant(name: str, args: argparse.Namespace,
                  device: torch.device) -> Callable[[], None]:
    """The closure of row ``name``: ``clean_fwd_bwd``, ``pgd`` or ``pgd+<variant>``
    (module level: memory probes pickle it)."""
    x, y = _inputs(args, device)
    variant = name.partition("+")[2]
    cl = "channels_last" in variant
    model: nn.Module = _model(args, device, channels_last=cl,
                              reference="reference" in variant.split("+"))
    if name == "clean_fwd_bwd":
        def baseline() -> None:
            xg = x.detach().requires_grad_(True)
            loss = nn.functional.cross_entropy(model(xg), y)
            torch.autograd.grad(loss, xg)

        return baseline
    if "bf16" in variant:
        model = _Autocast(model, device.type)
    inputs = x.contiguous(memory_format=torch.channels_last) if cl else x
    attack_gen = torch.Generator(device=device).manual_seed(2)

    def step() -> None:
        pgd_attack(model, inputs, y, EPS, EPS / 4, args.steps, generator=attack_gen)

    return step


def _autoattack(args: argparse.Namespace, device: torch.device) -> tuple[list[dict], list[str]]:
    from robustnas.attacks.autoattack import COMPONENTS, OfficialAutoAttack, autoattack_status

    ok, reason = autoattack_status()
    if not ok:
        return [], [f"AutoAttack skipped: {reason}"]
    n = args.aa_images or (64 if device.type == "cuda" else 4)
    model = _model(args, device, channels_last=False)
    x = torch.rand((n, 3, args.image_size, args.image_size),
                   generator=torch.Generator().manual_seed(3)).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)  # the model's own predictions: every image starts "correct"
    standard = args.aa_steps == 100 and args.aa_queries == 5000
    notes = [f"AutoAttack timed once on {n} images (labels = the model's predictions) and "
             f"scaled linearly to 1,000 images"
             + ("" if standard else f"; NOT standard: {args.aa_steps} iterations, "
                f"{args.aa_queries} Square queries")]
    plans = [("autoattack (cascade)", COMPONENTS)]
    if args.aa_parts:
        plans += [(f"  {p} alone", (p,)) for p in COMPONENTS]
    rows = []
    parts_total = 0.0
    for label, parts in plans:
        attack = OfficialAutoAttack(parts, args.aa_steps, args.aa_queries, seed=0)
        synchronize(device)
        start = time.perf_counter()
        out = attack.run(model, x, y, EPS)
        synchronize(device)
        seconds = time.perf_counter() - start
        if len(parts) == 1:
            parts_total += seconds
        rows.append({"attack": label, "images": n, "seconds": f"{seconds:.2f}",
                     "s_per_1000_images": f"{seconds * 1000 / n:.0f}",
                     "robust_after": f"{int(out.correct.sum())}/{n}"})
    if args.aa_parts:
        rows.append({"attack": "  sum of parts (upper bound)", "images": n,
                     "seconds": f"{parts_total:.2f}",
                     "s_per_1000_images": f"{parts_total * 1000 / n:.0f}", "robust_after": ""})
    return rows, notes


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time PGD (and CUDA variants) against the clean fp32 baseline; time AutoAttack."""
    _check(args)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    names, notes = _variants(args, device)
    keys = ["clean_fwd_bwd", "pgd"] + [f"pgd+{n}" for n in names]
    labels = {k: k.replace("pgd", f"pgd{args.steps}") for k in keys}
    steps = {labels[k]: build_variant(k, args, device) for k in keys}
    memory = {k: variant_memory(build_variant, k, args, device) for k in keys} \
        if args.memory else {}
    timings = time_interleaved(steps, device, args.warmup, 1, args.rounds)
    base = labels["clean_fwd_bwd"]
    ratio = "speed_vs_baseline"
    rows = []
    for key in keys:
        name = labels[key]
        row = {"variant": name,
               **timing_row(timings, name, base, device, args.batch_size, ratio),
               "baseline_passes":
                   f"{median(paired_ratios(timings.wall[name], timings.wall[base])):.1f}",
               "vs_own_reference": ratio_text(timings.speedup(name, labels["pgd+reference"]))
               if key == "pgd" and "pgd+reference" in labels else "",
               "own_reference_cpu":
                   ratio_text(timings.cpu_speedup(name, labels["pgd+reference"]))
               if key == "pgd" and "pgd+reference" in labels else "",
               "own_mem_mb": memory_text(memory.get(key)),
               "raw": timing_json(timings, name, base) | {"memory": memory.get(key)}}
        row["batch_ms"] = row.pop("step_ms")
        rows.append(row)
    columns = ["variant", *timing_columns(device, ratio), "baseline_passes"]
    columns[1] = "batch_ms"
    notes.insert(0, "times: median over rounds (min-max); ratios: per-round paired "
                    "clean_fwd_bwd/variant wall time, median (min-max)")
    if "pgd+reference" in labels:
        columns.append("vs_own_reference")
        notes.append("vs_own_reference: paired speed of PGD against PGD on the network of "
                     "before issue 11 (plain strided 1x1 convs in FactorizedReduce)")
        if device.type == "cpu":
            columns.append("own_reference_cpu")
            notes.append(CPU_RATIO_NOTE)
    if args.memory:
        columns.append("own_mem_mb")
        notes.append(memory_note(device))
    aa_rows: list[dict] = []
    if args.no_autoattack:
        notes.append("AutoAttack skipped (--no-autoattack)")
    else:
        aa_rows, aa_notes = _autoattack(args, device)
        notes += aa_notes
    table = format_table(rows, columns)
    if aa_rows:
        table += "\n\n" + format_table(aa_rows, ["attack", "images", "seconds",
                                                 "s_per_1000_images", "robust_after"])
    if notes:
        table += "\n" + "\n".join(f"note: {n}" for n in notes)
    return {
        "benchmark": "attack",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(),
        "config": {"genotype": args.genotype, "channels": args.channels, "layers": args.layers,
                   "batch_size": args.batch_size, "image_size": args.image_size,
                   "classes": args.classes, "steps": args.steps, "eps": "8/255",
                   "step_size": "2/255", "warmup": args.warmup, "rounds": args.rounds},
        "rows": rows, "autoattack": aa_rows, "notes": notes, "table": table,
    }
