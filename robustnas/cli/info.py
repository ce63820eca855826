"""``robustnas info``: parameters and multiply-accumulates of a genotype."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    p = sub.add_parser("info", help="parameter count and MACs of an architecture")
    p.add_argument("genotype", nargs="?", metavar="ARCHITECTURE",
                   help="a genotype JSON file or name (e.g. DARTS_V2), a hand-crafted network "
                        "(resnet18, wrn-28-10, resnet18@0.25, ...) or a model checkpoint (.pt)")
    p.add_argument("--ensemble", metavar="A,B,C",
                   help="size of a joint ensemble of these members instead")
    p.add_argument("--ensemble-combine", default="features",
                   choices=("features", "logits", "probs"))
    # Defaults: those of the dataset in a genotype's provenance, else CIFAR-10's
    # (robustnas.space.info_defaults).
    p.add_argument("--channels", type=int, help="initial channels (default: for the genotype's "
                   "dataset; CIFAR: 36)")
    p.add_argument("--layers", type=int, help="cells (default: for the genotype's dataset; "
                   "CIFAR: 20)")
    p.add_argument("--classes", type=int, help="classes (default: the genotype's dataset's)")
    p.add_argument("--in-channels", type=int, help="input channels (default: the dataset's)")
    p.add_argument("--image-size", type=int, help="input size (default: the dataset's)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("--space", help="darts or nb201 (default: detected from ARCHITECTURE)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the network and print its size."""
    import sys

    from robustnas.errors import UsageError
    from robustnas.space.info import genotype_info
    from robustnas.space.info_defaults import KEYS, default_sizes
    from robustnas.space.spaces import get_space, spec_space

    if args.space is not None:
        get_space(args.space)
    if args.genotype and (args.space or spec_space(args.genotype)) == "nb201":
        from robustnas.space.nb201.info import print_nb201_info  # NAS-Bench-201 cell

        return print_nb201_info(args)
    given = {k: getattr(args, k) for k in KEYS}
    if given["image_size"] is None and str(args.genotype or "").endswith((".pt", ".pth")):
        from robustnas.space.architecture import checkpoint_image_size

        given["image_size"] = checkpoint_image_size(args.genotype)  # None: not recorded
    sizes, note = default_sizes(args.genotype, given)
    for key, value in sizes.items():
        setattr(args, key, value)
    if note:
        print(f"note: {note}", file=sys.stderr)

    if args.ensemble:
        if args.genotype:
            raise UsageError("give either ARCHITECTURE or --ensemble, not both")
        from robustnas.space.architecture import model_info

        info = model_info(ensemble=args.ensemble, ensemble_combine=args.ensemble_combine,
                          channels=args.channels, layers=args.layers, classes=args.classes,
                          in_channels=args.in_channels, image_size=args.image_size)
    elif not args.genotype:
        raise UsageError("give an ARCHITECTURE (e.g. DARTS_V2 or resnet18) or --ensemble A,B,C")
    else:
        info = genotype_info(args.genotype, channels=args.channels, layers=args.layers,
                             classes=args.classes, in_channels=args.in_channels,
                             image_size=args.image_size)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info.get("kind", "network") != "network":  # hand-crafted network or ensemble
        print(f"architecture: {info['describe']}")
        print(f"input:    {info['in_channels']}x{info['image_size']}x{info['image_size']}, "
              f"{info['classes']} classes")
        print(f"params:   {info['params']:,} ({info['params'] / 1e6:.2f}M)")
        print(f"MACs:     {info['macs']:,} ({info['macs'] / 1e6:.1f}M per image)")
        return 0
    print(f"genotype: {info['genotype']}")
    print(f"network:  C={info['channels']} layers={info['layers']} classes={info['classes']} "
          f"input {info['in_channels']}x{info['image_size']}x{info['image_size']}")
    print(f"params:   {info['params']:,} ({info['params'] / 1e6:.2f}M, without auxiliary head)")
    print(f"          {info['params_with_auxiliary']:,} with the auxiliary head")
    print(f"MACs:     {info['macs']:,} ({info['macs'] / 1e6:.1f}M per image)")
    print(f"cells:    {info['describe']}")
    return 0
