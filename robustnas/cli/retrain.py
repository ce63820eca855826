"""``robustnas retrain``: train a genotype's network (standard or adversarial training)."""

from __future__ import annotations

import argparse
import sys

from robustnas.cli.options import add_quiet_option, add_resume_option, add_threads_option
from robustnas.config import parse_number, parse_set_overrides
from robustnas.errors import UsageError

# command-line option -> RetrainConfig field
_FIELDS = {
    "genotype": "genotype", "adversarial": "adversarial", "eps": "eps", "steps": "steps",
    "step_size": "step_size", "trades_beta": "trades_beta", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr", "lr_schedule": "lr_schedule",
    "lr_milestones": "lr_milestones", "lr_gamma": "lr_gamma", "momentum": "momentum",
    "weight_decay": "weight_decay", "grad_clip": "grad_clip", "channels": "C",
    "layers": "layers", "auxiliary_weight": "auxiliary_weight", "drop_path": "drop_path",
    "cutout": "cutout", "dataset": "dataset", "data_root": "data_root", "download": "download",
    "seed": "seed", "device": "device", "out": "out", "eval_every": "eval_every",
    "eval_n": "eval_n", "eval_steps": "eval_steps", "best_by": "best_by", "amp": "amp",
    "channels_last": "channels_last", "sync_bn": "sync_bn", "attack_bn": "attack_bn",
    "checkpoint_every": "checkpoint_every", "select_on": "select_on", "val_n": "val_n",
    "threads": "threads",
    "ensemble": "ensemble", "ensemble_combine": "ensemble_combine",
    "ensemble_init": "ensemble_init",
}


def _number(text: str) -> float:
    """argparse type for numbers such as ``0.03`` or ``8/255`` (errors are one line)."""
    try:
        return parse_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``retrain`` subcommand."""
    p = sub.add_parser(
        "retrain", help="train a genotype's network (standard or adversarial training)",
        description="Train the network of GENOTYPE to convergence; writes last.pt, best.pt, "
                    "config.yaml, summary.json and TensorBoard curves to --out. Options: "
                    "defaults per objective < --config YAML < command line. Runs under "
                    "torchrun --nproc_per_node N as it is (DDP).")
    p.add_argument("genotype", nargs="?", metavar="GENOTYPE",
                   help="genotype JSON file or name (DARTS_V2, ADVRUSH, ...) or a "
                        "hand-crafted network (resnet18, wrn-28-10, resnet18@0.25, ...); "
                        "optional with --resume, --ensemble or when the config file sets it; "
                        "another space's string form or genotype file is recognised")
    p.add_argument("--space", help="check that GENOTYPE is of this space (default: "
                                   "detected; robustnas info --spaces lists them)")
    p.add_argument("--config", metavar="FILE", help="YAML file of options "
                   "(see experiments/configs/retrain_*.yaml)")
    p.add_argument("--adversarial", metavar="OBJECTIVE",
                   help="none (DARTS standard training), pgd, trades or fgsm-rs")
    a = p.add_argument_group("attack used for training")
    a.add_argument("--eps", type=_number, help="L∞ radius in [0, 1] pixels, e.g. 8/255")
    a.add_argument("--steps", type=int, help="attack steps (pgd 7, trades 10)")
    a.add_argument("--step-size", type=_number, help="attack step (default ε/4; fgsm-rs 1.25ε)")
    a.add_argument("--trades-beta", type=_number, help="TRADES β (default 6)")
    a.add_argument("--attack-bn", choices=("eval", "train"),
                   help="BN mode while generating examples (default eval)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int)
    o.add_argument("--batch-size", type=int, help="global batch size (over all processes)")
    o.add_argument("--lr", type=_number)
    o.add_argument("--lr-schedule", choices=("cosine", "step"))
    o.add_argument("--lr-milestones", metavar="E1,E2",
                   help="epochs (0-based) where the step schedule multiplies lr by --lr-gamma")
    o.add_argument("--lr-gamma", type=_number)
    o.add_argument("--momentum", type=_number)
    o.add_argument("--weight-decay", type=_number)
    o.add_argument("--grad-clip", type=_number, help="gradient-norm clip (0: off)")
    n = p.add_argument_group("network and data")
    n.add_argument("--channels", type=int, help="initial channels C (default 36)")
    n.add_argument("--layers", type=int, help="number of cells (default 20)")
    n.add_argument("--ensemble", metavar="A,B,C",
                   help="train a joint ensemble of these members instead of GENOTYPE "
                        "(genotypes or hand-crafted names; repeats = copies with different "
                        "initialisations, e.g. 3xDARTS_V2)")
    n.add_argument("--ensemble-combine", choices=("features", "logits", "probs"),
                   help="average the members' last feature maps before one shared classifier "
                        "(features, default, as seed 000), their logits or probabilities")
    n.add_argument("--ensemble-init", metavar="SCHEME",
                   help="member initialisations: default, seed000 (kaiming-normal, "
                        "xavier-normal, kaiming-uniform) or a comma list")
    n.add_argument("--auxiliary-weight", type=_number, help="auxiliary head weight (0: no head)")
    n.add_argument("--drop-path", type=_number, help="final drop-path probability")
    n.add_argument("--cutout", type=int,
                   help="cutout size in pixels (0: off; default: the objective's, for "
                        "none DARTS' 16 on 32x32 images, half the side on others)")
    n.add_argument("--dataset", help="cifar10, cifar100, svhn, digits, synthetic, or your own: "
                   "imagefolder (--data-root DIR of class folders) or npz (--data-root FILE.npz)")
    n.add_argument("--data-root", metavar="DIR")
    n.add_argument("--download", action="store_true", default=None,
                   help="download the dataset with torchvision if it is missing")
    e = p.add_argument_group("held-out evaluation and checkpoints")
    e.add_argument("--eval-every", type=int, help="epochs between held-out evaluations")
    e.add_argument("--select-on", choices=("val", "test"),
                   help="split that selects best.pt: val (default; carved from the training "
                        "set) or test (optimistic, warned about)")
    e.add_argument("--val-n", type=int,
                   help="training images held out for validation (default min(1000, 10%%))")
    e.add_argument("--eval-n", type=int,
                   help="held-out images evaluated each time (default 1000; 0: all)")
    e.add_argument("--eval-steps", type=int, help="PGD steps of the evaluation (default 10)")
    e.add_argument("--best-by", choices=("clean", "robust"),
                   help="metric that selects best.pt (default robust when adversarial)")
    e.add_argument("--checkpoint-every", type=int, help="steps between mid-epoch last.pt saves")
    x = p.add_argument_group("execution")
    x.add_argument("--seed", type=int)
    x.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    x.add_argument("--out", metavar="DIR", help="run directory (default runs/retrain)")
    x.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that holds one, deleting the old run's files")
    add_resume_option(x, "last.pt", elsewhere=True)
    x.add_argument("--amp", action="store_true", default=None, help="bf16 autocast (CUDA only)")
    x.add_argument("--channels-last", action="store_true", default=None)
    x.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun: batch-norm statistics over the global batch")
    x.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any other config option, e.g. --set lr_min=0.001 (repeatable)")
    add_threads_option(x)
    add_quiet_option(x)
    p.set_defaults(func=run)


def build_overrides(args: argparse.Namespace) -> dict:
    """Command-line options as config overrides (``None`` = not given)."""
    overrides = parse_set_overrides(args.set)
    for arg, field in _FIELDS.items():
        value = getattr(args, arg)
        if value is not None:
            overrides[field] = value
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
