"""``robustnas study``: run (one worker of) a study, rebuild its storage, or report it."""

from __future__ import annotations

import argparse

from robustnas.cli.options import add_threads_option
from robustnas.errors import UsageError

USAGE = ("robustnas study STUDY.yaml | robustnas study rebuild STUDY.yaml | "
         "robustnas study report STUDY")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    p = sub.add_parser(
        "study", help="run an architecture study (trials in an Optuna storage) or report it",
        description="robustnas study STUDY.yaml: run one worker of the study (start the same "
                    "command again, on this or other machines with the same --storage, for "
                    "more workers; run it again to resume). robustnas study rebuild "
                    "STUDY.yaml: rebuild a lost or damaged storage from the trial results "
                    "on disk. robustnas study report STUDY: write the report of a study "
                    "directory, study file or saved study.json. Exit status: 0 every trial "
                    "finished; 2 bad input or storage error; 4 trials failed (fix the cause, "
                    "then --retry-failed); 130 interrupted (the trial was put back in the "
                    "queue).")
    p.add_argument("target", nargs="+", metavar="STUDY.yaml | rebuild STUDY.yaml | report STUDY",
                   help="a study file to run, 'rebuild' and a study file, or 'report' and a "
                        "study directory, study file or study.json")
    p.add_argument("--storage", metavar="URL",
                   help="storage shared by all workers (default: the journal file "
                        "<study dir>/study.journal, for several workers on one machine or a "
                        "shared file system); sqlite:///PATH for one worker; a server URL "
                        "such as postgresql://user:pw@host/db for many machines")
    p.add_argument("--out", metavar="DIR", help="study directory (default: the file's 'out')")
    p.add_argument("--name", help="study name in the storage (report; default: the only one)")
    p.add_argument("--accept-changes", action="store_true",
                   help="the study file changed since trials finished: keep those trials as "
                        "another protocol (out of the table) and rerun their keys")
    p.add_argument("--retry-failed", action="store_true",
                   help="queue the trials that failed again (after fixing their cause)")
    p.add_argument("--group", action="append", default=None, metavar="SPEC",
                   help="report: pool architectures into groups and compare them (Welch's "
                        "t-test): 'kind', 'regularizer' or NAME=PATTERN[,PATTERN...] "
                        "(label patterns, kind:KIND); repeat for several groups")
    p.add_argument("--verbose", action="store_true",
                   help="show each trial's training and evaluation progress")
    p.add_argument("--no-report", action="store_true",
                   help="do not write/print the report when the worker finishes")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the runner, the rebuild or the report."""
    if args.threads is not None:
        import os

        from robustnas.runtime import set_threads

        # Exported too, so that every trial (whose own default reads it) uses the same.
        os.environ["OMP_NUM_THREADS"] = str(set_threads(args.threads))
    target = list(args.target)
    if target[0] == "report":
        if len(target) != 2:
            raise UsageError("usage: robustnas study report STUDY (a study directory, file "
                             "or study.json)")
        from robustnas.studies import write_study_report

        written = write_study_report(args.out or target[1], storage=args.storage,
                                     name=args.name, groups=args.group)
        _print(written.table, written.paths, written.report.pending)
        if written.groups is not None:
            from robustnas.studies.groups import to_markdown

            print(to_markdown(written.groups))
        return 0
    rebuild = target[0] == "rebuild"
    if rebuild:
        target = target[1:]
    if len(target) != 1:
        raise UsageError(f"give one study file ({USAGE})")
    if args.group:
        raise UsageError("--group belongs to 'robustnas study report'")
    from robustnas.studies import rebuild_storage, run_study
    from robustnas.studies.runner import EXIT_FAILED_TRIALS

    if rebuild:
        result = rebuild_storage(target[0], storage=args.storage, out=args.out)
    else:
        result = run_study(target[0], storage=args.storage, out=args.out,
                           verbose=args.verbose, report=not args.no_report,
                           accept_changes=args.accept_changes,
                           retry_failed=args.retry_failed)
    if not args.no_report and not rebuild:
        _print(result.table, result.report_paths, 0)
    print(f"storage: {result.storage_display}")
    print(f"dashboard: {_dashboard(result.storage)}")
    print(result.summary())
    if result.failed:
        return EXIT_FAILED_TRIALS
    return 0


def _dashboard(url: str) -> str:
    """The optuna-dashboard command for a storage (password masked)."""
    from robustnas.studies.storage import journal_path, mask_url

    journal = journal_path(url)
    if journal is not None:
        return f"optuna-dashboard {journal}"
    masked = mask_url(url)
    note = " (put the password back in)" if masked != url else ""
    return f"optuna-dashboard '{masked}'{note}"


def _print(table: str, paths: list, pending: int) -> None:
    print(table)
    if pending:
        print(f"partial: {pending} trials pending or running")
    for path in paths:
        print(f"written: {path}")
