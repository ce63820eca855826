"""Two CPU runs on one machine: how much they slow each other, with OpenMP's active and
passive wait policies (issue 18 item 5).

For each policy, ``rounds`` times: one run alone, then two identical runs started together;
the wall time of each run is recorded. A run is a digits search with the quickstart's
network (C 8, 5 cells, batch 64, first order) for ``--epochs`` epochs, default threads
(robustnas' default: min(cores, 4)). Prints one JSON line per run and a summary table:
the pair's mean wall time over the alone time (2.0 is the physical limit on 2 cores when one
run alone keeps both busy; much more means the runs fight).

    python experiments/busy_machine.py --epochs 2 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def command(out: str, epochs: int) -> list[str]:
    return [sys.executable, "-m", "robustnas", "search", "--dataset", "digits", "--channels",
            "8", "--layers", "5", "--batch-size", "64", "--epochs", str(epochs),
            "--warmup-epochs", "1", "--device", "cpu", "--seed", "0", "--quiet",
            "--set", "draw_every=0", "--set", "eval_hessian_every=0", "--out", out]


def run_together(n: int, policy: str, epochs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    env["OMP_WAIT_POLICY"] = policy
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        procs = [subprocess.Popen(command(os.path.join(tmp, f"r{i}"), epochs), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i in range(n)]
        ends = []
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"run failed: {err.decode()[-500:]}")
            ends.append(time.perf_counter() - start)
    return ends


def sd(values: list[float]) -> float:
    """Sample standard deviation (0 for one value)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--policies", default="ACTIVE,PASSIVE")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    for r in range(args.rounds):
        for policy in args.policies.split(","):
            res = results.setdefault(policy, {"alone": [], "pair": []})
            alone = run_together(1, policy, args.epochs)
            pair = run_together(2, policy, args.epochs)
            res["alone"] += alone
            res["pair"] += pair
            print(json.dumps({"round": r, "policy": policy, "alone_s": alone, "pair_s": pair,
                              "load": os.getloadavg()[0]}), flush=True)
    print(f"{'policy':8} {'alone s (n)':>16} {'pair s (n)':>16} {'pair/alone':>10}")
    for policy, res in results.items():
        a, p = res["alone"], res["pair"]
        print(f"{policy:8} {statistics.fmean(a):8.1f} ± {sd(a):4.1f} ({len(a)}) "
              f"{statistics.fmean(p):8.1f} ± {sd(p):4.1f} ({len(p)}) "
              f"{statistics.fmean(p) / statistics.fmean(a):9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
