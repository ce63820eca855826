"""``robustnas correlate``: which proxies at initialisation predict tabulated robustness."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - annotations only; --help stays light
    from pathlib import Path

    from robustnas.tables.base import TableBench


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``correlate`` subcommand."""
    p = sub.add_parser("correlate", help="Kendall tau / Spearman rho of proxies at init vs "
                                         "tabulated NAS-Bench-201 robust accuracy")
    p.add_argument("--bench-root", default=None,
                   help="robustness benchmark directory (without it: the proxies of --cells "
                        "random cells of --space, their values and their agreement only)")
    p.add_argument("--space", default="nb201",
                   help="without --bench-root: the space the random cells come from "
                        "(nb201, nares; default nb201)")
    p.add_argument("--bench", default="robustness", help="robustness (default) or "
                                                         "nas-robbench-201")
    p.add_argument("--dataset", default="cifar10", help="benchmark dataset (default cifar10)")
    p.add_argument("--key", action="append", default=None,
                   help="tabulated key to correlate with (repeatable; default clean + attacks)")
    p.add_argument("--clean-key", default=None,
                   help="key ranking the top-k, ties broken by id (default: clean, or "
                        "val_clean, the authors' val_acc, for NAS-RobBench-201)")
    p.add_argument("--top-k", type=int, default=100, help="also correlate over the k best cells "
                                                          "by clean accuracy (0: off)")
    p.add_argument("--out", default="runs/correlate", help="output directory")
    p.add_argument("--proxies", default=None, metavar="NAMES",
                   help="proxies to measure and correlate: 'all' or a comma list of "
                        "registered zero-cost proxies (default: jacobian_frobenius, "
                        "hessian_top_eigenvalue, lipschitz_log10, params, macs); a file path "
                        "here is read as --proxies-file (its former meaning)")
    p.add_argument("--proxies-file", default=None, metavar="FILE",
                   help="proxies file (JSON lines; default OUT/proxies.jsonl); proxies "
                        "already in it are not measured again")
    p.add_argument("--predictor", choices=("rf",), default=None,
                   help="also fit a random forest (100 trees, 80/20 split) on the proxies to "
                        "each tabulated column: R² mean ± sd over --predictor-seeds and "
                        "feature importances (needs scikit-learn: the 'predictor' extra)")
    p.add_argument("--predictor-seeds", type=int, default=5,
                   help="split seeds of the predictor (default 5, at least 2)")
    p.add_argument("--cells", type=int, default=0,
                   help="measure this many evaluated cells (seeded random; default 0 = all)")
    p.add_argument("--no-compute", action="store_true",
                   help="only correlate the cells already in the proxies file")
    p.add_argument("--proxy-dataset", default="digits",
                   help="images the proxies are measured on (default digits; cifar10 needs "
                        "its files under --data-root)")
    p.add_argument("--data-root", default="data")
    p.add_argument("--proxy-n", type=int, default=32, help="images in the fixed batch")
    p.add_argument("--channels", type=int, default=16, help="C of the networks (default 16)")
    p.add_argument("--cells-per-stage", type=int, default=5, help="N (default 5)")
    p.add_argument("--hessian-iters", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    from robustnas.cli.table import add_run_option

    add_run_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure missing proxies, correlate, print the table, write JSON + heatmaps."""
    import random
    from pathlib import Path

    from robustnas.errors import UsageError
    from robustnas.io import atomic_write_text, ensure_writable_dir
    from robustnas.tables import open_bench
    from robustnas.tables.correlate import (
        correlate,
        draw_heatmap,
        format_table,
        small_n_warnings,
    )
    from robustnas.tables.proxies import read_results

    for name in ("top_k", "cells"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0")
    if args.predictor and args.predictor_seeds < 2:
        raise UsageError("--predictor-seeds must be at least 2 (for an sd over seeds)")
    names_spec, file_spec = _split_proxies_option(args.proxies, args.proxies_file)
    if args.predictor:
        from robustnas.tables.predictor import _sklearn

        _sklearn()  # refuse in one line before measuring anything
    if args.bench_root is None:
        return _proxies_only(args, names_spec, file_spec)
    bench = open_bench(args.bench_root, args.bench, args.run)
    out = ensure_writable_dir(args.out)
    proxies_path = Path(file_spec) if file_spec else out / "proxies.jsonl"
    from robustnas.tables.zero_cost import proxy_names

    names = proxy_names(names_spec)
    if args.no_compute:
        records = read_results(proxies_path)
        if not records:
            raise UsageError(f"{proxies_path} holds no proxies (run without --no-compute)")
        if names_spec is not None and names_spec.strip() == "all":
            names = [n for n in names if any(n in r for r in records.values())]
    else:
        reps = list(bench.meta.representatives)
        if args.cells:
            reps = sorted(random.Random(args.seed).sample(reps, min(args.cells, len(reps))),
                          key=int)
        records = _measure(args, [bench.meta.strings[r] for r in reps], proxies_path, names)
    results = correlate(records, bench, args.dataset, args.key, proxies=names,
                        top_k=args.top_k or None, clean_key=args.clean_key)
    print(format_table(results))
    for line in small_n_warnings(results):
        print(f"warning: {line}", file=sys.stderr)
    atomic_write_text(out / "correlations.json",
                      json.dumps([vars(r) for r in results], indent=2) + "\n")
    written = [out / "correlations.json", proxies_path]
    for subset in dict.fromkeys(r.subset for r in results):
        written.append(draw_heatmap(results, out / f"kendall_{subset}.png", subset))
    if args.predictor:
        written.append(_predict(records, bench, args, names, out))
    for path in written:
        print(f"written: {path}")
    return 0


def _measure(args: argparse.Namespace, cells: list[str], path: Path,
             names: list[str]) -> dict[str, dict]:
    """Measure the proxies ``cells`` lack into ``path`` with the command's settings,
    reporting progress on stderr; returns every record of the file."""
    from robustnas.tables.proxies import ProxySettings, compute_proxies

    settings = ProxySettings(dataset=args.proxy_dataset, data_root=args.data_root,
                             n=args.proxy_n, seed=args.seed, C=args.channels,
                             N=args.cells_per_stage, hessian_iters=args.hessian_iters)

    def progress(i: int, total: int) -> None:
        if i == total or i % 10 == 0:
            print(f"proxies: {i}/{total} cells", file=sys.stderr)

    return compute_proxies(cells, path, settings, progress, names)


def _proxies_only(args: argparse.Namespace, names_spec: str | None,
                  file_spec: str | None) -> int:
    """No benchmark: measure the proxies of ``--cells`` seeded random cells of ``--space``
    and report their values and pairwise Kendall τ (:mod:`robustnas.tables.proxy_summary`)."""
    import random
    from pathlib import Path

    from robustnas.errors import UsageError
    from robustnas.io import atomic_write_text, ensure_writable_dir
    from robustnas.tables.candidates import candidates
    from robustnas.tables.proxies import read_results
    from robustnas.tables.proxy_summary import format_summary, summarize
    from robustnas.tables.zero_cost import proxy_names

    if args.predictor:
        raise UsageError("--predictor fits proxies to tabulated accuracies: it needs "
                         "--bench-root")
    if args.key:
        raise UsageError("--key names a tabulated column: it needs --bench-root")
    if not args.no_compute and not args.cells:
        raise UsageError("without --bench-root, --cells N says how many random cells of "
                         f"--space {args.space} to measure")
    names = proxy_names(names_spec)
    out = ensure_writable_dir(args.out)
    proxies_path = Path(file_spec) if file_spec else out / "proxies.jsonl"
    if args.no_compute:
        records = read_results(proxies_path)
        if not records:
            raise UsageError(f"{proxies_path} holds no proxies (run without --no-compute)")
    else:
        space = candidates(args.space)
        rng = random.Random(args.seed)
        cells: dict[str, None] = {}
        for _ in range(100 * args.cells):  # distinct cells; a space may hold fewer
            cells.setdefault(space.draw(rng).to_string())
            if len(cells) == args.cells:
                break
        records = _measure(args, list(cells), proxies_path, names)
        records = {c: records[c] for c in cells}
    names = [n for n in names if any(n in r for r in records.values())]
    summary = summarize(records, names)
    print(f"{summary['cells']} cells, proxies at initialisation (no --bench-root: their "
          f"correlation with robust accuracy needs the robustness dataset)")
    print(format_summary(summary))
    path = out / "proxy_summary.json"
    atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
    for written in (path, proxies_path):
        print(f"written: {written}")
    return 0


def _split_proxies_option(proxies: str | None, proxies_file: str | None
                          ) -> tuple[str | None, str | None]:
    """``(names, file)`` from ``--proxies`` and ``--proxies-file``: a ``--proxies`` value
    that looks like a path (a JSON suffix or a directory separator) is the file, as before
    the option named proxies."""
    import os

    if proxies is not None and (proxies.endswith((".jsonl", ".json")) or os.sep in proxies):
        if proxies_file is not None:
            from robustnas.errors import UsageError

            raise UsageError("--proxies names a file and --proxies-file is given too")
        print("note: --proxies FILE is now --proxies-file FILE (--proxies takes names)",
              file=sys.stderr)
        return None, proxies
    return proxies, proxies_file


def _predict(records: dict, bench: TableBench, args: argparse.Namespace, names: list[str],
             out: Path) -> Path:
    """Fit and score the random forest, print its table, write ``predictor.json``."""
    from robustnas.io import atomic_write_text
    from robustnas.tables.predictor import TREES, format_forest, predict_robustness

    scores = predict_robustness(records, bench, args.dataset, names, args.key,
                                seeds=range(args.predictor_seeds))
    print(f"random forest ({TREES} trees, 80/20 split, R² over {args.predictor_seeds} "
          f"seeds):")
    print(format_forest(scores))
    path = out / "predictor.json"
    atomic_write_text(path, json.dumps({"predictor": "rf", "trees": TREES,
                                        "test_fraction": 0.2, "proxies": names,
                                        "seeds": list(range(args.predictor_seeds)),
                                        "results": [vars(r) | {"r2": list(r.r2)}
                                                    for r in scores]}, indent=2) + "\n")
    return path
