"""``robustnas info``: parameters and multiply-accumulates of a genotype."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    p = sub.add_parser("info", help="parameter count and MACs of a genotype")
    p.add_argument("genotype", help="a genotype JSON file or a named genotype (e.g. DARTS_V2)")
    p.add_argument("--channels", type=int, default=36, help="initial channels (default 36)")
    p.add_argument("--layers", type=int, default=20, help="cells (default 20)")
    p.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the network and print its size."""
    from robustnas.space.info import genotype_info

    info = genotype_info(args.genotype, channels=args.channels, layers=args.layers,
                         classes=args.classes, in_channels=args.in_channels,
                         image_size=args.image_size)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"genotype: {info['genotype']}")
    print(f"network:  C={info['channels']} layers={info['layers']} classes={info['classes']} "
          f"input {info['in_channels']}x{info['image_size']}x{info['image_size']}")
    print(f"params:   {info['params']:,} ({info['params'] / 1e6:.2f}M, without auxiliary head)")
    print(f"          {info['params_with_auxiliary']:,} with the auxiliary head")
    print(f"MACs:     {info['macs']:,} ({info['macs'] / 1e6:.1f}M per image)")
    print(f"cells:    {info['describe']}")
    return 0
