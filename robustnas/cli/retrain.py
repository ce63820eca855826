"""``robustnas retrain``: train a genotype's network (standard or adversarial training)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from robustnas.cli.config_options import add_config_options, config_overrides
from robustnas.cli.options import add_quiet_option, add_resume_option
from robustnas.config import parse_set_overrides
from robustnas.errors import UsageError
from robustnas.options import option_info
from robustnas.train.config import GROUP_EXECUTION, RetrainConfig  # no PyTorch

#: The destinations of the options that are the command's own, declared below; every other
#: option is generated from a RetrainConfig field (robustnas.cli.config_options). The
#: positional GENOTYPE fills the ``genotype`` field; ``--space`` only checks it.
COMMAND_ONLY = ("genotype", "space", "config", "overwrite", "resume", "set", "quiet")


def _genotype_help() -> str:
    """The field's help, and what the positional adds to it."""
    fields = {f.name: f for f in dataclasses.fields(RetrainConfig)}
    return (option_info(fields["genotype"]).help + "; optional with --resume, --ensemble or "
            "when the config file sets it; another space's string form or genotype file is "
            "recognised")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``retrain`` subcommand; its settings' options come from RetrainConfig."""
    p = sub.add_parser(
        "retrain", help="train a genotype's network (standard or adversarial training)",
        description="Train the network of GENOTYPE to convergence; writes last.pt, best.pt, "
                    "config.yaml, summary.json and TensorBoard curves to --out. Options: "
                    "defaults per objective < --config YAML < command line (--set NAME=VALUE "
                    "for any setting). Runs under torchrun --nproc_per_node N as it is (DDP).")
    p.add_argument("genotype", nargs="?", metavar="GENOTYPE", help=_genotype_help())
    p.add_argument("--space", help="check that GENOTYPE is of this space (default: "
                                   "detected; robustnas info --spaces lists them)")
    p.add_argument("--config", metavar="FILE", help="YAML file of options "
                   "(see experiments/configs/retrain_*.yaml)")
    groups = add_config_options(p, RetrainConfig, parse_numbers=True)
    x = groups[GROUP_EXECUTION]
    x.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that holds one, deleting the old run's files")
    add_resume_option(x, "last.pt", elsewhere=True)
    x.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any other config option, e.g. --set lr_min=0.001 (repeatable)")
    add_quiet_option(x)
    p.set_defaults(func=run)


def build_overrides(args: argparse.Namespace) -> dict:
    """Command-line options as config overrides (a flag beats ``--set``)."""
    overrides = parse_set_overrides(args.set)
    if args.genotype is not None:
        overrides["genotype"] = args.genotype
    overrides.update(config_overrides(args, RetrainConfig))
    return overrides


def run(args: argparse.Namespace) -> int:
    """Run the training and print where its results are."""
    from robustnas.train import TrainingInterrupted, retrain

    overrides = build_overrides(args)
    if args.space is not None:
        from robustnas.space.spaces import get_space, spec_space

        get_space(args.space)
        if args.genotype and spec_space(args.genotype) != args.space:
            raise UsageError(f"genotype {args.genotype!r} is not a {args.space} genotype "
                             f"(it is {spec_space(args.genotype)})")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it: "
                         "give one of them")
    try:
        result = retrain(config_file=args.config, overrides=overrides, resume=args.resume,
                         show_progress=not args.quiet, overwrite=args.overwrite)
    except TrainingInterrupted as exc:
        print(f"robustnas retrain: {exc}", file=sys.stderr)
        return 130
    if result.rank != 0:
        return 0
    from robustnas.train.heldout import selection_label

    heldout = result.heldout
    if heldout:
        line = f"{selection_label(result.selection)}: clean {heldout['clean_acc']:.4f}"
        if "robust_acc" in heldout:
            line += f", PGD {heldout['robust_acc']:.4f}"
        print(line)
    if result.best_checkpoint is not None:
        print(f"best ({result.best['metric']} {result.best['value']:.4f}, epoch "
              f"{result.best['epoch']}): {result.best_checkpoint}")
    print(f"last: {result.last_checkpoint}")
    print(f"summary: {result.summary_path}")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir}")
    if "warning" in result.selection:
        print(f"warning: {result.selection['warning']}", file=sys.stderr)
    return 0
