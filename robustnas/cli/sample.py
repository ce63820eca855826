"""``robustnas sample``: random architectures from a search space, one genotype JSON each."""

from __future__ import annotations

import argparse

from robustnas.cli.options import space_help


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sample`` subcommand."""
    p = sub.add_parser(
        "sample", help="draw random architectures (uniform over a search space)",
        description="Draw N distinct architectures uniformly from a search space and write "
                    "OUT/random_<seed>_<index>.json (genotypes with provenance: sampler, "
                    "space, seed, index) and OUT/samples.json. Each space's sampler is "
                    "uniform over its architectures (robustnas info --spaces).")
    p.add_argument("--n", type=int, required=True, help="how many architectures to draw")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="directory for the genotype JSON files")
    p.add_argument("--space", help=space_help())
    p.add_argument("--allow-duplicates", action="store_true",
                   help="allow the same architecture twice (default: all distinct)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the samples already in --out (default: refuse)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw, write and list the files."""
    from robustnas.errors import UsageError
    from robustnas.space.sampling import sample_to_dir
    from robustnas.space.spaces import DEFAULT_SPACE

    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    paths = sample_to_dir(args.n, args.seed, args.out, allow_duplicates=args.allow_duplicates,
                          space=args.space, overwrite=args.overwrite)
    for path in paths:
        print(f"written: {path}")
    space = args.space or DEFAULT_SPACE
    print(f"{len(paths)} architectures from the {space} space (seed {args.seed})")
    return 0
