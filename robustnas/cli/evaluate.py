"""``robustnas evaluate CHECKPOINT [...]``: attacks, measures, corruptions → report.json/.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustnas.cli.options import add_quiet_option, add_threads_option
from robustnas.config import parse_number


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate", help="evaluate robustness of checkpoints (attacks, measures, corruptions)",
        description="Evaluate one or more model checkpoints on their dataset's test split and "
                    "write a JSON report plus a Markdown table next to it.")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="checkpoint(s) holding a robustnas model payload")
    p.add_argument("--ensemble", metavar="A.pt,B.pt,...",
                   help="also evaluate the post-hoc ensemble of these checkpoints (one model "
                        "averaging their logits, attacked white-box through every member), "
                        "reported beside each member")
    p.add_argument("--ensemble-combine", default="logits", choices=("logits", "probs"),
                   help="what the post-hoc ensemble averages (default: %(default)s)")
    p.add_argument("--attacks", default="clean,fgsm,pgd20",
                   help="comma list: clean, fgsm, pgd<k>, cw<k>, autoattack, apgd-ce, apgd-t, "
                        "fab-t, square (default: %(default)s)")
    p.add_argument("--eps", default="8/255",
                   help="L∞ budget(s) in [0,1] pixel units, comma list for a sweep "
                        "(default: %(default)s)")
    p.add_argument("--n", type=int, default=None, help="evaluate the first N test images")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of random starts and noise")
    p.add_argument("--restarts", type=int, default=1, help="random restarts of PGD/CW")
    p.add_argument("--measures", action="store_true",
                   help="Jacobian norm, input-Hessian top eigenvalue and Lipschitz bound")
    p.add_argument("--measure-n", type=int, default=100,
                   help="images used for the Jacobian/Hessian measures (default: %(default)s)")
    p.add_argument("--corruptions", action="store_true",
                   help="accuracy under common corruptions (CIFAR-C files or generated)")
    p.add_argument("--corruptions-dir", default=None,
                   help="directory with <corruption>.npy and labels.npy (CIFAR-10-C layout)")
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: the one recorded in the checkpoint)")
    p.add_argument("--data-root", default=None, help="dataset directory")
    p.add_argument("--no-sanity", action="store_true",
                   help="skip the gradient-masking checks (extra PGD runs)")
    p.add_argument("--sanity-n", type=int, default=200,
                   help="images used by the extra sanity-check attacks (default: %(default)s)")
    p.add_argument("--large-eps", default="0.5",
                   help="ε of the 'accuracy reaches zero' check (default: %(default)s)")
    p.add_argument("--aa-steps", type=int, default=None,
                   help="AutoAttack iterations (default 100; other values are not standard)")
    p.add_argument("--aa-queries", type=int, default=None,
                   help="Square queries (default 5000; other values are not standard)")
    p.add_argument("--out", default="report.json",
                   help="JSON report path; the Markdown goes next to it (default: %(default)s)")
    p.add_argument("--run-dir", default=None, help="also log the figures to TensorBoard here")
    add_threads_option(p)
    add_quiet_option(p)
    p.add_argument("--supernet", action="store_true",
                   help="allow evaluating a search checkpoint's whole supernet (slow, and not "
                        "the searched architecture: use derive + retrain for that)")
    p.add_argument("--model-card", metavar="FILE", default=None,
                   help="also write a RobustBench-style model card (JSON) for the one "
                        "checkpoint; needs autoattack in --attacks and one ε")
    p.add_argument("--card-name", default=None,
                   help="the model card's name (default: the checkpoint's label)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report files, print the comparison table."""
    from robustnas.errors import UsageError
    from robustnas.evaluation import evaluate
    from robustnas.io import check_writable_dir, ensure_writable_dir
    from robustnas.runtime import set_threads

    set_threads(args.threads)
    out = Path(args.out)
    # Fail before a long evaluation, but create the directories only once there is a report.
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    card = Path(args.model_card) if args.model_card else None
    if card is not None:
        _check_card(args)
        check_writable_dir(card.parent if str(card.parent) else Path("."))
    models: list = list(args.checkpoints)
    if args.ensemble:
        from robustnas.evaluation.ensemble import ensemble_candidates

        models = ensemble_candidates(args.ensemble, combine=args.ensemble_combine) + models
    elif not models:
        raise UsageError("give at least one CHECKPOINT or --ensemble A.pt,B.pt")
    report = evaluate(
        models, attacks=args.attacks, eps=args.eps, n=args.n,
        batch_size=args.batch_size, device=args.device, seed=args.seed, restarts=args.restarts,
        measures=args.measures, measure_n=args.measure_n, corruptions=args.corruptions,
        corruptions_dir=args.corruptions_dir, dataset=args.dataset, data_root=args.data_root,
        sanity=not args.no_sanity, sanity_n=args.sanity_n,
        large_eps=parse_number(args.large_eps, "large_eps"), progress=not args.quiet,
        run_dir=args.run_dir, aa_steps=args.aa_steps, aa_queries=args.aa_queries,
        supernet=args.supernet, announce=lambda line: print(line, file=sys.stderr))
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


def _check_card(args: argparse.Namespace) -> None:
    """Refuse a --model-card request that cannot be met, before any evaluation."""
    from robustnas.attacks import parse_attack_list
    from robustnas.evaluation import parse_eps_list
    from robustnas.evaluation.model_card import check_card_request

    attacks = [a.name for a in parse_attack_list(args.attacks, aa_steps=args.aa_steps,
                                                 aa_queries=args.aa_queries)]
    eps = [text for _, text in parse_eps_list(args.eps)]
    count = len(args.checkpoints)
    if args.ensemble:  # the ensemble and each of its members
        from robustnas.evaluation.ensemble import parse_checkpoint_list

        count += 1 + len(parse_checkpoint_list(args.ensemble))
    check_card_request(attacks, eps, count)
