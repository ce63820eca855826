"""The command-line options of ``robustnas bench BENCHMARK``, one function per benchmark.

The benchmarks (:mod:`robustnas.benchmarks`) take the parsed options as a namespace and
parse no command line themselves; this module declares them for ``robustnas bench``. Each
function registers itself in :data:`robustnas.benchmarks.BENCHMARKS` under its benchmark's
name (module ``robustnas.benchmarks.NAME``), which is how ``robustnas bench`` finds it.
"""

from __future__ import annotations

import argparse

from robustnas.benchmarks import BENCHMARKS
from robustnas.cli.options import add_deprecated_int
from robustnas.config import parse_number


def _number(text: str) -> float:
    try:
        return parse_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None



@BENCHMARKS.register("search")
def search_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``robustnas bench search``."""
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", default="auto",
                   help="comma list of first,second,bf16,channels_last,reference, the "
                        "relaxations pc-darts,gdas, any regulariser (advrush, lipschitz, "
                        "jacobian, beta, sdarts-rs, ...) and their + combinations, "
                        "e.g. second+reference, pc-darts+jacobian; the "
                        "first listed is the baseline (auto: reference,first,channels_last,"
                        "second,advrush,lipschitz, plus bf16 ones on CUDA)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3,
                   help="timed rounds (variants take turns; the median round is reported)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the per-variant memory probes (one fresh process each on CPU)")


@BENCHMARKS.register("train")
def train_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``robustnas bench train``."""
    p.add_argument("--genotype", default="DARTS_V2",
                   help="genotype name or JSON file, or a hand-crafted network "
                        "(preact-resnet18, wrn-34-10, ...; --channels/--layers do not apply)")
    p.add_argument("--objective", default="pgd", help="pgd, trades, fgsm-rs or none")
    p.add_argument("--channels", type=int, default=36)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=None,
                   help="attack steps (default: the objective's, 7 for pgd)")
    p.add_argument("--eps", type=_number, default=8 / 255, help="attack radius (8/255)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", default="auto",
                   help="comma list of fp32,bf16,channels_last,bf16+channels_last,standard "
                        "and reference, joined with + (e.g. standard+reference: the row with "
                        "the drop-path of before issue 11); fp32 is always the baseline "
                        "(auto: fp32, channels_last, standard, standard+reference, plus the "
                        "bf16 ones on CUDA)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per row")
    p.add_argument("--iters", type=int, default=2, help="calls per timed round")
    p.add_argument("--rounds", type=int, default=3,
                   help="timed rounds (rows take turns; the median round is reported)")
    add_deprecated_int(p, "--repeats", "rounds")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the per-variant memory probes (one fresh process each on CPU)")


@BENCHMARKS.register("attack")
def attack_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``robustnas bench attack``."""
    p.add_argument("--genotype", default="DARTS_V2")
    p.add_argument("--channels", type=int, default=36)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=20, help="PGD steps (default: %(default)s)")
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", default="auto",
                   help="comma list of channels_last,bf16,bf16+channels_last,reference "
                        "(bf16: CUDA only; reference: the network of before issue 11; auto: "
                        "all on CUDA, channels_last and reference on CPU)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds; the median is kept")
    add_deprecated_int(p, "--repeats", "rounds")
    p.add_argument("--aa-images", type=int, default=None,
                   help="images AutoAttack is timed on (default 64 on CUDA, 4 on CPU)")
    p.add_argument("--aa-steps", type=int, default=100)
    p.add_argument("--aa-queries", type=int, default=5000)
    p.add_argument("--aa-parts", action="store_true",
                   help="also time each AutoAttack part alone on every image (upper bound)")
    p.add_argument("--no-autoattack", action="store_true", help="skip AutoAttack")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--memory", action="store_true",
                   help="also measure each row's own peak memory (one fresh process each "
                        "on CPU)")


@BENCHMARKS.register("suite")
def suite_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``robustnas bench suite``."""
    from robustnas.benchmarks.suite import JOBS

    p.add_argument("--device", default="auto", help="cuda, cuda:1, cpu (default: auto)")
    p.add_argument("--out", default="runs/bench-suite",
                   help="folder for results.jsonl and results.md (written as jobs finish)")
    p.add_argument("--budget", type=float, default=480.0,
                   help="seconds for all jobs together (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and one round: checks the path, measures nothing useful")
    p.add_argument("--only", default="",
                   help=f"comma list of jobs ({', '.join(j.name for j in JOBS)})")
    p.add_argument("--no-memory", action="store_true", help="skip the memory probes")

