"""``robustnas bench suite``: every benchmark at paper scale in one command, for the minutes a
GPU is lent (``experiments/gpu_check.sh`` runs the CUDA tests, then this).

Jobs, each one ``robustnas bench ...`` process on synthetic CIFAR-shaped data (speed does
not depend on the pixels), each against its own eager fp32 baseline measured in the same
process (the ratios are those of :mod:`robustnas.benchmarks.timing`):

========================  =====================================================================
``search``                a search step at DARTS' settings (C 16, 8 cells, batch 64): first
                          and second order, AdvRush, Lipschitz, channels_last, bf16 on CUDA;
                          the epoch time is 391 steps (25,000 training images / 64)
``train-darts``           DARTS_V2 PGD-7 retraining at C 36, 20 cells, batch 64
``train-preact``          PreAct-ResNet-18 PGD-10 retraining, batch 128
``train-wrn``             WRN-34-10 PGD-10 retraining, batch 128
``attack``                PGD-20 and AutoAttack (standard) throughput on WRN-34-10, batch 256
========================  =====================================================================

Every job runs in its own process with a time limit taken from one budget (``--budget``,
480 s by default: a lent GPU is there for minutes), so a crash, an out-of-memory or a slow
job costs that job only. Figures are written as they come: one JSON line per job in
``results.jsonl`` and the Markdown tables in ``results.md`` under ``--out``; a run cut short
keeps everything measured so far. ``--quick`` shrinks every job (tiny networks, one round)
to check the whole path on a CPU in a minute or two.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustnas.errors import UsageError
from robustnas.io import atomic_write_text

#: DARTS' training half of CIFAR-10 over its batch size: steps of one search epoch.
SEARCH_EPOCH_STEPS = 25_000 // 64 + 1


@dataclass(frozen=True)
class Job:
    """One benchmark process: its name, ``robustnas bench`` arguments, share of the budget."""

    name: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    share: float


JOBS = (
    Job("search", ("search", "--channels", "16", "--layers", "8", "--batch-size", "64"),
        ("search", "--channels", "4", "--layers", "5", "--batch-size", "4",
         "--image-size", "16", "--variants", "reference,first,second,advrush,lipschitz"),
        0.30),
    Job("train-darts", ("train", "--genotype", "DARTS_V2", "--objective", "pgd", "--steps",
                        "7", "--channels", "36", "--layers", "20", "--batch-size", "64"),
        ("train", "--genotype", "DARTS_V2", "--objective", "pgd", "--steps", "2",
         "--channels", "4", "--layers", "5", "--batch-size", "4", "--image-size", "16"),
        0.20),
    Job("train-preact", ("train", "--genotype", "preact-resnet18", "--objective", "pgd",
                         "--steps", "10", "--batch-size", "128"),
        ("train", "--genotype", "preact-resnet18@0.125", "--objective", "pgd", "--steps", "2",
         "--batch-size", "4", "--image-size", "16"),
        0.15),
    Job("train-wrn", ("train", "--genotype", "wrn-34-10", "--objective", "pgd", "--steps",
                      "10", "--batch-size", "128"),
        ("train", "--genotype", "wrn-16-1", "--objective", "pgd", "--steps", "2",
         "--batch-size", "4", "--image-size", "16"),
        0.15),
    Job("attack", ("attack", "--genotype", "wrn-34-10", "--steps", "20", "--batch-size",
                   "256", "--aa-images", "256"),
        ("attack", "--genotype", "wrn-16-1", "--steps", "2", "--batch-size", "4",
         "--image-size", "16", "--aa-images", "4", "--aa-steps", "2", "--aa-queries", "10"),
        0.20),
)
_QUICK_TIMING = ("--warmup", "0", "--rounds", "1")


def _jobs(only: str) -> list[Job]:
    if not only:
        return list(JOBS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {j.name: j for j in JOBS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown job {unknown[0]!r} (choose from: {', '.join(known)})")
    return [known[n] for n in names]


def _command(job: Job, opts: argparse.Namespace) -> list[str]:
    args = list(job.quick_args + _QUICK_TIMING if opts.quick else job.args)
    if opts.quick and args[0] != "attack":  # the attack benchmark has no --iters
        args += ["--iters", "1"]
    args += ["--device", opts.device, "--json"]
    lean = opts.no_memory or opts.quick
    if args[0] == "attack":  # the attack benchmark measures memory only on request
        args += [] if lean else ["--memory"]
    elif lean:
        args.append("--no-memory")
    return [sys.executable, "-m", "robustnas", "bench", *args]


def _environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds"), "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "device": device}
    if torch.cuda.is_available() and device != "cpu":
        index = torch.device(device if device != "auto" else "cuda").index or 0
        env.update({"gpu": torch.cuda.get_device_name(index), "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version()})
    return env


def _markdown(env: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = [f"# Benchmark suite ({env.get('gpu', env['device'])})", "",
             f"{env['date']}; torch {env['torch']}"
             + (f", CUDA {env['cuda']}, cuDNN {env['cudnn']}" if "cuda" in env else "")
             + "; synthetic CIFAR-shaped data; ratios against the eager fp32 baseline "
               "measured in the same process.", ""]
    for rec in records:
        lines += [f"## {rec['job']}", "", f"`{' '.join(rec['command'][2:])}` "
                  f"({rec['seconds']:.0f} s)", ""]
        if rec.get("error"):
            lines += [f"**not measured**: {rec['error']}", ""]
            continue
        lines += ["```", rec["result"].get("table", ""), "```", ""]
        if rec.get("epoch_s"):
            lines += [f"search epoch (first order, {SEARCH_EPOCH_STEPS} steps): "
                      f"{rec['epoch_s']:.1f} s", ""]
    return "\n".join(lines) + "\n"


def _epoch_seconds(result: dict[str, Any]) -> float | None:
    """A first-order search epoch at DARTS' size: the median step time x 391 steps."""
    from robustnas.benchmarks.timing import median

    for row in result.get("rows", []):
        if row.get("variant") == "first" and row.get("raw", {}).get("wall_s"):
            return median(row["raw"]["wall_s"]) * SEARCH_EPOCH_STEPS
    return None


def _summary_line(env: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """One Markdown table row for ``experiments/BENCHMARKS.md``'s CUDA section: per job its
    baseline's images/s and its fastest row with the paired ratio to that baseline."""
    cells = [env["date"][:10], env.get("gpu", env["device"]),
             f"torch {env['torch']}" + (f" / CUDA {env['cuda']}" if "cuda" in env else "")]
    for rec in records:
        if rec.get("error"):
            cells.append(f"{rec['job']}: not measured")
            continue
        if rec.get("epoch_s"):
            cells.append(f"search epoch {rec['epoch_s']:.1f} s")
        rows = [r for r in rec["result"].get("rows", []) if r.get("images_per_s")]
        if not rows:
            continue
        # the attack benchmark's first row is a clean forward-backward; its PGD rows are
        # the ones to compare; elsewhere the first row is the eager fp32 baseline
        base = next((r for r in rows if rec["job"] != "attack"
                     or str(r["variant"]).startswith("pgd")), rows[0])
        family = str(base["variant"]).split()[0].split("+")[0]
        same = [r for r in rows if str(r["variant"]).split()[0].split("+")[0] == family]
        if rec["job"] == "search":  # first-order steps only: the layouts and precisions
            same = [r for r in rows if not {"second", "advrush", "lipschitz"}
                    & set(str(r["variant"]).split("+"))]
        best = max(same, key=lambda r: float(r["images_per_s"]))
        key, ratio = next(((k, v) for k, v in best.items() if k.startswith("speed_vs_")),
                          ("", ""))
        paired = f" ({ratio.split()[0]} {key.replace('_', ' ')}, paired)" if ratio else ""
        cells.append(f"{rec['job']}: {base['variant']} {base['images_per_s']} img/s, "
                     f"best {best['variant']} {best['images_per_s']} img/s{paired}")
    return "| " + " | ".join(str(c) for c in cells) + " |"


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """Run the jobs one after another within the budget; write figures as they come."""
    if opts.budget <= 0:
        raise UsageError("--budget must be positive (seconds)")
    jobs = _jobs(opts.only)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    env = _environment(opts.device)
    jsonl = out / "results.jsonl"
    records: list[dict[str, Any]] = []
    start = time.monotonic()
    for i, job in enumerate(jobs):
        left = opts.budget - (time.monotonic() - start)
        remaining_share = sum(j.share for j in jobs[i:])
        limit = max(left * job.share / remaining_share, 1.0) if left > 0 else 0.0
        command = _command(job, opts)
        record: dict[str, Any] = {"job": job.name, "command": command, "env": env,
                                  "limit_s": round(limit, 1)}
        began = time.monotonic()
        if limit <= 1.0:
            record["error"] = "skipped: the time budget was spent"
        else:
            record.update(_run_job(command, limit))
        record["seconds"] = time.monotonic() - began
        if not record.get("error") and job.name == "search":
            record["epoch_s"] = _epoch_seconds(record["result"])
        records.append(record)
        with open(jsonl, "a", encoding="utf-8") as f:  # one line a job, as it finishes
            f.write(json.dumps(record, default=str) + "\n")
        atomic_write_text(out / "results.md", _markdown(env, records))
        print(f"{job.name}: " + (record.get("error") or f"done in {record['seconds']:.0f} s"),
              file=sys.stderr, flush=True)
    line = _summary_line(env, records)
    rows = [{"job": r["job"], "status": "error" if r.get("error") else "ok",
             "seconds": f"{r['seconds']:.0f}", "note": (r.get("error") or "")[:80]}
            for r in records]
    from robustnas.benchmarks.timing import format_table

    table = format_table(rows, ["job", "status", "seconds", "note"])
    table += f"\nwritten: {jsonl}, {out / 'results.md'}"
    table += f"\nBENCHMARKS.md line: {line}"
    # every job's full result is in results.jsonl; the summary stays readable
    return {"benchmark": "suite", "env": env, "quick": bool(opts.quick), "rows": rows,
            "results": str(jsonl), "benchmarks_line": line, "table": table}


def _run_job(command: list[str], limit: float) -> dict[str, Any]:
    """Run one benchmark process for at most ``limit`` seconds; its JSON or its error."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=limit, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped at its time limit ({limit:.0f} s)"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": f"exit {proc.returncode}: {tail[-1] if tail else 'no output'}"[:500]}
    try:
        return {"result": json.loads(proc.stdout)}
    except json.JSONDecodeError:
        return {"error": "the benchmark printed no JSON"}
