"""``robustnas study``: run (one worker of) a study, or write its report."""

from __future__ import annotations

import argparse

from robustnas.cli.options import add_threads_option
from robustnas.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    p = sub.add_parser(
        "study", help="run an architecture study (trials in an Optuna storage) or report it",
        description="robustnas study STUDY.yaml: run one worker of the study (start the same "
                    "command again, on this or other machines with the same --storage, for "
                    "more workers; run it again to resume). robustnas study report STUDY: "
                    "write the report of a study directory or study file.")
    p.add_argument("target", nargs="+", metavar="STUDY.yaml | report STUDY",
                   help="a study file to run, or 'report' and a study directory or file")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL shared by all workers (default: SQLite file "
                        "<study dir>/study.db), e.g. postgresql://user:pw@host/db")
    p.add_argument("--out", metavar="DIR", help="study directory (default: the file's 'out')")
    p.add_argument("--name", help="study name in the storage (report; default: the only one)")
    p.add_argument("--verbose", action="store_true",
                   help="show each trial's training and evaluation progress")
    p.add_argument("--no-report", action="store_true",
                   help="do not write/print the report when the worker finishes")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the runner or the report."""
    if args.threads is not None:
        import os

        from robustnas.runtime import set_threads

        # Exported too, so that every trial (whose own default reads it) uses the same.
        os.environ["OMP_NUM_THREADS"] = str(set_threads(args.threads))
    target = list(args.target)
    if target[0] == "report":
        if len(target) != 2:
            raise UsageError("usage: robustnas study report STUDY (a study directory or file)")
        from robustnas.studies import write_study_report

        written = write_study_report(args.out or target[1], storage=args.storage,
                                     name=args.name)
        _print(written.table, written.paths, written.report.pending)
        return 0
    if len(target) != 1:
        raise UsageError("give one study file (or: robustnas study report STUDY)")
    from robustnas.studies import run_study

    result = run_study(target[0], storage=args.storage, out=args.out, verbose=args.verbose,
                       report=not args.no_report)
    if not args.no_report:
        _print(result.table, result.report_paths, 0)
    print(f"storage: {result.storage}")
    print(f"dashboard: optuna-dashboard {result.storage}")
    return 0


def _print(table: str, paths: list, pending: int) -> None:
    print(table)
    if pending:
        print(f"partial: {pending} trials pending or running")
    for path in paths:
        print(f"written: {path}")
