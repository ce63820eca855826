"""Where does a search step's host memory go? RSS before, during and after one step.

For each ``robustnas bench search`` variant named, in a fresh process each: the resident
memory (RSS) after building the supernet, the peak RSS of one step, the RSS after the step
(every tensor of the step freed, ``gc.collect()``), and the RSS after glibc's
``malloc_trim(0)`` hands the freed heap back to the system. A step that frees its graphs
shows an RSS after ``malloc_trim`` close to the RSS before it; the difference between the
two "after" figures is memory the allocator keeps for reuse, not memory the step holds.

Run: ``OMP_NUM_THREADS=1 python experiments/step_memory.py first advrush`` (sizes as the
issue-11 benchmark: C = 8, 5 cells, batch 32, 32×32; ``--batch-size`` etc. to change).
Linux only (``/proc/self/status``, glibc).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import multiprocessing
import sys

import torch

from robustnas.benchmarks.search import build_variant
from robustnas.benchmarks.timing import _rss_mb, peak_rss_mb


def measure(name: str, args: argparse.Namespace) -> str:
    """One line of figures (MiB) for variant ``name``, measured in this process."""
    step = build_variant(name, args, torch.device("cpu"))
    built = _rss_mb()
    step()
    gc.collect()
    after = _rss_mb()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    trimmed = _rss_mb()
    return (f"{name:20s} built {built:7.0f}  step peak {peak_rss_mb():7.0f}  "
            f"after step {after:7.0f}  after malloc_trim {trimmed:7.0f}")


def _child(name: str, args: argparse.Namespace, queue: multiprocessing.Queue) -> None:
    queue.put(measure(name, args))


def main() -> int:
    """Measure every variant given on the command line, each in a fresh process."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="+", help="bench search variants, e.g. first advrush")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    args = p.parse_args()
    if not sys.platform.startswith("linux"):
        print("step_memory.py: Linux only (/proc and glibc's malloc_trim)", file=sys.stderr)
        return 2
    print(f"RSS in MiB; C={args.channels}, {args.layers} cells, batch {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s)")
    ctx = multiprocessing.get_context("spawn")
    for name in args.variants:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, args, queue))
        proc.start()
        print(queue.get(), flush=True)
        proc.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
