"""``robustnas bench {search,train,attack,suite}``: throughput against an eager baseline."""

from __future__ import annotations

import argparse
import importlib
import json

from robustnas.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand (its options are parsed lazily per benchmark)."""
    p = sub.add_parser("bench", help="benchmark search, training or attack steps",
                       description="Time the steps of a search, training or attack against an "
                                   "eager fp32 baseline measured in the same run. "
                                   "`robustnas bench BENCHMARK --help` lists its options.")
    p.add_argument("benchmark", nargs="?", metavar="BENCHMARK",
                   help="search, train, attack or suite")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Parse the chosen benchmark's options, run it, print its table (or JSON)."""
    from robustnas.benchmarks import BENCHMARKS

    if args.benchmark is None:
        print(f"usage: robustnas bench {{{','.join(BENCHMARKS)}}} [options] [--json] "
              f"(see --help)")
        return 0
    if args.benchmark not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {args.benchmark!r} (choose from: "
                         f"{', '.join(BENCHMARKS)})")
    try:
        module = importlib.import_module(f"robustnas.benchmarks.{args.benchmark}")
    except ModuleNotFoundError as exc:
        raise UsageError(f"benchmark {args.benchmark!r} is not available ({exc})") from None
    from robustnas.cli import _Parser

    parser = _Parser(prog=f"robustnas bench {args.benchmark}")
    BENCHMARKS.get(args.benchmark)(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    opts = parser.parse_args(args.rest)
    result = module.run(opts)
    if opts.json:
        print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=2))
    else:
        header = {k: v for k, v in result.items() if k not in ("rows", "table")}
        print(json.dumps(header))
        print(result["table"])
    return 0
