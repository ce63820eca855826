"""``robustnas search``: run a DARTS search with optional robustness regularisers."""

from __future__ import annotations

import argparse
import sys

from robustnas.cli.config_options import add_config_options, config_overrides
from robustnas.cli.options import add_quiet_option, add_resume_option
from robustnas.config import parse_set_overrides
from robustnas.errors import UsageError
from robustnas.search.config import SearchConfig  # no PyTorch (see robustnas.search)

#: The destinations of the options that are the command's own, declared below; every other
#: option is generated from a SearchConfig field (robustnas.cli.config_options). ``reg_opt``
#: fills ``regularizer_options``, merged with the config file's.
COMMAND_ONLY = ("config", "reg_opt", "resume", "overwrite", "set", "quiet")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand; its settings' options come from SearchConfig."""
    p = sub.add_parser("search", help="run a differentiable architecture search",
                       description="Bilevel DARTS search; writes genotype.json, cell pictures, "
                                   "TensorBoard events and checkpoints to --out. Settings: "
                                   "defaults < --config YAML < command line (--set NAME=VALUE "
                                   "for any setting). Under "
                                   "'torchrun --nproc_per_node N -m robustnas search ...' the "
                                   "global batch is sharded over N processes (GPUs), with "
                                   "global batch norm unless --set sync_bn=false.")
    p.add_argument("--config", metavar="FILE",
                   help="YAML file of options (see experiments/configs)")
    p.add_argument("--reg-opt", action="append", metavar="NAME.KEY=VALUE", default=[],
                   help="a regulariser option, e.g. advrush.h=1.5 (repeatable)")
    add_config_options(p, SearchConfig)
    add_resume_option(p, "checkpoint.pt", elsewhere=False)
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that holds one, deleting the old run's files")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="any other config option, e.g. --set w_lr=0.05 (repeatable)")
    add_quiet_option(p)
    p.set_defaults(func=run)


def _reg_options(pairs: list[str]) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for name_key, value in parse_set_overrides(pairs).items():
        name, dot, key = name_key.partition(".")
        if not dot or not key:
            raise UsageError(f"--reg-opt expects NAME.KEY=VALUE, got {name_key!r}")
        options.setdefault(name, {})[key] = value
    return options


def build_overrides(args: argparse.Namespace) -> dict:
    """Command-line options as config overrides (a flag beats ``--set``)."""
    overrides = parse_set_overrides(args.set)
    overrides.update(config_overrides(args, SearchConfig))
    if args.reg_opt:
        overrides["regularizer_options"] = _reg_options(args.reg_opt)
    return overrides


def run(args: argparse.Namespace) -> int:
    """Run the search and print where its results are."""
    import warnings

    from robustnas.config import read_yaml, resolve_config
    from robustnas.search.api import run_search
    from robustnas.search.searcher import SearchInterrupted
    from robustnas.space.decisiveness import UniformGenotypeWarning

    # The API warns of a uniform genotype; the CLI says it in its own words (below).
    warnings.simplefilter("ignore", UniformGenotypeWarning)
    overrides = build_overrides(args)
    if args.reg_opt and args.config:
        # Merge per-regulariser options from the file with those from the command line.
        from robustnas.search.regularizers import REGULARIZERS

        file_opts = dict(read_yaml(args.config).get("regularizer_options") or {})
        for name, opts in overrides["regularizer_options"].items():
            from_file = dict(file_opts.get(name) or {})
            # An option given on the command line replaces the file's other spelling of the
            # same quantity (advrush: h_pixels replaces h), instead of clashing with it.
            alternatives = (getattr(REGULARIZERS.get(name), "alternative_options", {})
                            if name in REGULARIZERS else {})
            for key in opts:
                for other in alternatives.get(key, ()):
                    from_file.pop(other, None)
            file_opts[name] = {**from_file, **opts}
        overrides["regularizer_options"] = file_opts
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it: "
                         "give one of them")
    try:
        if args.resume:  # only what is given here changes the run's saved settings
            result = run_search(config_file=args.config, overrides=overrides,
                                resume=args.resume, show_progress=not args.quiet)
        else:
            result = run_search(resolve_config(SearchConfig, args.config, overrides),
                                overwrite=args.overwrite, show_progress=not args.quiet)
    except SearchInterrupted as exc:
        from robustnas.distributed import dist_info_from_env

        info = dist_info_from_env()
        if info.is_main:  # under torchrun, rank 0 reports
            print(f"robustnas search: {exc}", file=sys.stderr)
            if info.enabled:
                # torchrun reports every process that exits non-zero, and a signal sent to
                # torchrun itself, with a traceback of its own that we cannot suppress: say
                # beforehand that it is expected, so that it is not read as a crash.
                print("robustnas search: the run stopped cleanly; torchrun now prints its "
                      "own report (ChildFailedError or SignalException, exit status 1): "
                      "expected after a stop", file=sys.stderr)
        return 130
    if result.rank != 0:  # under torchrun, rank 0 reports
        return 0
    print(f"genotype: {result.genotype.describe()}")
    print_decisiveness(result.genotype.provenance)
    print(f"written: {result.genotype_path}")
    for path in result.pictures:
        print(f"written: {path}")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir}")
    if result.stopped_early:
        print(f"stopped early: {result.stopped_early}")
    return 0


def print_decisiveness(provenance: dict) -> None:
    """How decisive the genotype is (stdout) and, when it is noise, a warning (stderr)."""
    from robustnas.space.decisiveness import describe

    if "decisiveness" not in provenance:
        return
    line, warning = describe(provenance["decisiveness"])
    print(line)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
