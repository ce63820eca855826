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
    p.add_argument("--space", help="the genotype's space (default: detected from ARCHITECTURE)")
    p.add_argument("--spaces", action="store_true",
                   help="list the registered search spaces and what each can do")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the network and print its size."""
    import sys

    from robustnas.errors import UsageError
    from robustnas.space.info_defaults import KEYS, default_sizes
    from robustnas.space.models import checkpoint_image_size, model_info

    if args.spaces:
        return _print_spaces(args.json)
    if args.space is not None:
        from robustnas.space.spaces import check_space_name

        check_space_name(args.space, "info")
    given = {k: getattr(args, k) for k in KEYS}
    if given["image_size"] is None and str(args.genotype or "").endswith((".pt", ".pth")):
        given["image_size"] = checkpoint_image_size(args.genotype)  # None: not recorded
    sizes, note = default_sizes(args.genotype, given, args.space)
    for key, value in sizes.items():
        setattr(args, key, value)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.ensemble and args.genotype:
        raise UsageError("give either ARCHITECTURE or --ensemble, not both")
    if not args.ensemble and not args.genotype:
        raise UsageError("give an ARCHITECTURE (e.g. DARTS_V2 or resnet18) or --ensemble A,B,C")
    info = model_info(args.genotype, ensemble=args.ensemble,
                      ensemble_combine=args.ensemble_combine, channels=args.channels,
                      layers=args.layers, classes=args.classes, in_channels=args.in_channels,
                      image_size=args.image_size, space=args.space)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _print_info(info)
    return 0


def _print_info(info: dict) -> None:
    size = f"input {info['in_channels']}x{info['image_size']}x{info['image_size']}"
    if "space" not in info:  # hand-crafted network, ensemble or checkpoint
        print(f"architecture: {info['describe']}")
        print(f"input:    {info['in_channels']}x{info['image_size']}x{info['image_size']}, "
              f"{info['classes']} classes")
        print(f"params:   {info['params']:,} ({info['params'] / 1e6:.2f}M)")
        print(f"MACs:     {info['macs']:,} ({info['macs'] / 1e6:.1f}M per image)")
        return
    sizes = (f"C={info['channels']} layers={info['layers']} " if info.get("channels") else "")
    print(f"genotype: {info['genotype']}")
    network = info.get("network") or f"{info['space']}, {sizes}".rstrip(", ")
    print(f"network:  {network} classes={info['classes']} {size}")
    if "params_with_auxiliary" in info:
        print(f"params:   {info['params']:,} ({info['params'] / 1e6:.2f}M, without auxiliary "
              f"head)")
        print(f"          {info['params_with_auxiliary']:,} with the auxiliary head")
    else:
        print(f"params:   {info['params']:,} ({info['params'] / 1e6:.6f}M)")
    print(f"MACs:     {info['macs']:,} ({info['macs'] / 1e6:.1f}M per image)")
    if info.get("describe") and info["describe"] != info["genotype"]:
        print(f"cells:    {info['describe']}")


def _print_spaces(as_json: bool) -> int:
    from robustnas.space.spaces import DEFAULT_SPACE, get_space, space_names

    rows = []
    for name in space_names():
        space = get_space(name)
        rows.append({"name": name, "default": name == DEFAULT_SPACE,
                     "size": space.size if space.size != float("inf") else None,
                     "capabilities": sorted(space.capabilities),
                     "network_sizes": space.network_sizes if space.sized else None,
                     "layers": space.layers_meaning if space.sized else None,
                     "benches": list(space.benches)})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        caps = ", ".join(row["capabilities"]) or "no supernet"
        size = f"{row['size']:,} architectures" if row["size"] else "unbounded"
        default = " (default)" if row["default"] else ""
        print(f"{row['name']}{default}: {size}; {caps}"
              + (f"; tables: {', '.join(row['benches'])}" if row["benches"] else ""))
    return 0
