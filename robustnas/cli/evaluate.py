"""``robustnas evaluate CHECKPOINT [...]``: attacks, measures, corruptions → report.json/.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustnas.cli.config_options import add_config_options, config_overrides
from robustnas.cli.options import add_quiet_option
from robustnas.evaluation.config import EvaluateConfig  # no PyTorch (see its module)

#: The destinations of the options that are the command's own, declared below (what to
#: evaluate and where the report goes); every other option is generated from an
#: EvaluateConfig field (robustnas.cli.config_options).
COMMAND_ONLY = ("checkpoints", "config", "set", "ensemble", "ensemble_combine", "out", "quiet",
                "model_card", "card_name")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand; its settings' options come from EvaluateConfig."""
    p = sub.add_parser(
        "evaluate", help="evaluate robustness of checkpoints (attacks, measures, corruptions)",
        description="Evaluate one or more model checkpoints on their dataset's test split and "
                    "write a JSON report plus a Markdown table next to it. Settings: "
                    "defaults < --config YAML < command line (--set NAME=VALUE for any "
                    "setting, e.g. --set hessian_iters=50).")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="checkpoint(s) holding a robustnas model payload")
    p.add_argument("--config", metavar="FILE",
                   help="YAML file of evaluation settings (the EvaluateConfig fields, e.g. "
                        "attacks, eps, n; see experiments/configs/evaluate.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any evaluation setting, e.g. --set n=500 (repeatable)")
    p.add_argument("--ensemble", metavar="A.pt,B.pt,...",
                   help="also evaluate the post-hoc ensemble of these checkpoints (one model "
                        "averaging their logits, attacked white-box through every member), "
                        "reported beside each member")
    p.add_argument("--ensemble-combine", default="logits", choices=("logits", "probs"),
                   help="what the post-hoc ensemble averages (default: %(default)s)")
    add_config_options(p, EvaluateConfig)
    p.add_argument("--out", default="report.json",
                   help="JSON report path; the Markdown goes next to it (default: %(default)s)")
    add_quiet_option(p)
    p.add_argument("--model-card", metavar="FILE", default=None,
                   help="also write a RobustBench-style model card (JSON) for the one "
                        "checkpoint; needs autoattack in --attacks and one ε")
    p.add_argument("--card-name", default=None,
                   help="the model card's name (default: the checkpoint's label)")
    p.set_defaults(func=run)


def resolve_evaluate_config(args: argparse.Namespace) -> EvaluateConfig:
    """The settings of this evaluation: defaults < ``--config`` < ``--set`` < flags."""
    from robustnas.config import parse_set_overrides, resolve_config

    overrides = parse_set_overrides(args.set)
    overrides.update(config_overrides(args, EvaluateConfig))
    return resolve_config(EvaluateConfig, args.config, overrides)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report files, print the comparison table."""
    from robustnas.errors import UsageError
    from robustnas.evaluation import evaluate
    from robustnas.io import check_writable_dir, ensure_writable_dir

    config = resolve_evaluate_config(args)
    out = Path(args.out)
    # Fail before a long evaluation, but create the directories only once there is a report.
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    card = Path(args.model_card) if args.model_card else None
    if card is not None:
        _check_card(args, config)
        check_writable_dir(card.parent if str(card.parent) else Path("."))
    models: list = list(args.checkpoints)
    if args.ensemble:
        from robustnas.evaluation.ensemble import ensemble_candidates

        models = ensemble_candidates(args.ensemble, combine=args.ensemble_combine) + models
    elif not models:
        raise UsageError("give at least one CHECKPOINT or --ensemble A.pt,B.pt")
    report = evaluate(models, config=config, progress=not args.quiet,
                      announce=lambda line: print(line, file=sys.stderr))
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    json_path, md_path = report.save(out)
    print(report.text_table())
    for line in report.summary_lines():  # --measures / --corruptions, not only in the files
        print(line)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {json_path} and {md_path}")
    if card is not None:
        from robustnas.evaluation.model_card import write_model_card

        ensure_writable_dir(card.parent if str(card.parent) else Path("."))
        print(f"wrote model card {write_model_card(report, card, name=args.card_name)}")
    return 0


def _check_card(args: argparse.Namespace, config: EvaluateConfig) -> None:
    """Refuse a --model-card request that cannot be met, before any evaluation."""
    from robustnas.attacks import parse_attack_list
    from robustnas.evaluation import parse_eps_list
    from robustnas.evaluation.model_card import check_card_request

    attacks = [a.name for a in parse_attack_list(config.attacks, aa_steps=config.aa_steps,
                                                 aa_queries=config.aa_queries)]
    eps = [text for _, text in parse_eps_list(config.eps)]
    count = len(args.checkpoints)
    if args.ensemble:  # the ensemble and each of its members
        from robustnas.evaluation.ensemble import parse_checkpoint_list

        count += 1 + len(parse_checkpoint_list(args.ensemble))
    check_card_request(attacks, eps, count)
