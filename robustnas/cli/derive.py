"""``robustnas derive``: the genotype of a search checkpoint, as JSON plus pictures."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``derive`` subcommand."""
    p = sub.add_parser("derive", help="derive a genotype from a search checkpoint")
    p.add_argument("checkpoint", help="a search checkpoint (checkpoint.pt) or its run directory")
    p.add_argument("-o", "--output", default="genotype.json", help="JSON file to write")
    p.add_argument("--no-pictures", action="store_true", help="skip the PNG/SVG cell drawings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Derive, write and print."""
    from pathlib import Path

    from robustnas.search.export import derive_from_checkpoint
    from robustnas.search.state import CHECKPOINT_NAME

    path = Path(args.checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    genotype, written = derive_from_checkpoint(path, args.output, draw=not args.no_pictures)
    print(f"genotype: {genotype.describe()}")
    from robustnas.cli.search import print_decisiveness

    print_decisiveness(genotype.provenance)
    print(f"written: {written['genotype']}")
    for picture in written["pictures"]:
        print(f"written: {picture}")
    return 0
