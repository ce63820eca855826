"""``robustnas table``: tabular robustness benchmarks (NAS-Bench-201 cells, NARes WideResNets).

Architectures are read in the benchmark's own space (:attr:`TableBench.space`): a
NAS-Bench-201 string or cell file for ``robustness`` and ``nas-robbench-201``, a
``D1,W1,D2,W2,D3,W3`` string or NARes genotype file for ``nares``.
"""

from __future__ import annotations

import argparse
import json


def add_run_option(p: argparse.ArgumentParser) -> None:
    """``--run``: which training run NAS-RobBench-201 values are read from."""
    p.add_argument("--run", default=None,
                   help="nas-robbench-201 only: the training run read from each metric, 1 "
                        "(default, as the authors' reader) or 'mean' over all runs")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``table`` subcommand (``table query``, ``table search``)."""
    p = sub.add_parser("table", help="query tabular robustness benchmarks (NAS-Bench-201, "
                                     "NARes)")
    tsub = p.add_subparsers(dest="table_command", metavar="ACTION", parser_class=type(p))
    tsub.required = True
    q = tsub.add_parser("query", help="the tabulated numbers of one architecture")
    q.add_argument("arch", help="an id of the benchmark, an architecture string "
                                "(NAS-Bench-201 '|op~0|+|op~0|op~1|+...'; NARes "
                                "'D1,W1,D2,W2,D3,W3' such as 5,10,5,10,5,10) or a genotype "
                                "JSON file")
    q.add_argument("--bench-root", required=True,
                   help="directory holding the benchmark files (extracted or zipped)")
    q.add_argument("--bench", default="robustness",
                   help="robustness (Jung et al. 2023, default), nas-robbench-201 or nares "
                        "(Lu et al., cifar10.jsonl or nares.txz)")
    q.add_argument("--dataset", default="cifar10",
                   help="cifar10 (default), cifar100 or ImageNet16-120 (nares: cifar10)")
    q.add_argument("--key", action="append", default=None,
                   help="key to show (repeatable): clean, fgsm@Linf, pgd@Linf, "
                        "aa_apgd-ce@Linf, aa_square@Linf or a corruption (nares: "
                        "val_pgd_acc, test_aa_acc, ...); default: all present")
    q.add_argument("--measure", default="accuracy", help="accuracy (default) or confidence")
    q.add_argument("--json", action="store_true", help="print a JSON object")
    q.add_argument("--ranks", action="store_true",
                   help="also the rank of each number among all evaluated cells")
    add_run_option(q)
    q.set_defaults(func=run_query)
    s = tsub.add_parser("search", help="black-box NAS on the table: best found vs queries")
    s.add_argument("--bench-root", required=True)
    s.add_argument("--bench", default="robustness",
                   help="robustness (default), nas-robbench-201 or nares")
    s.add_argument("--dataset", default="cifar10")
    s.add_argument("--key", default=None,
                   help="objective key (default: the bench's, pgd@Linf; nares: val_pgd_acc, "
                        "the authors' objective)")
    s.add_argument("--eps", type=float, default=None,
                   help="level of the key (ε in 1/255 for attacks; default 1 for attacks)")
    s.add_argument("--methods", "--algorithm", dest="methods",
                   default="random,evolution,tpe,nsga2",
                   help="comma list of random, evolution, tpe, nsga2, predictor (a random "
                        "forest picks the next cells; needs scikit-learn)")
    s.add_argument("--budget", type=int, default=100, help="queries per run (default 100)")
    s.add_argument("--seeds", type=int, default=5, help="runs per method (default 5)")
    s.add_argument("--out", default="runs/table-search", help="output directory")
    add_run_option(s)
    s.set_defaults(func=run_search)


def format_result(result: object) -> str:
    """The small text table ``table query`` prints for an :class:`ArchResult`."""
    from robustnas.tables.base import ArchResult

    assert isinstance(result, ArchResult)
    lines = [f"architecture {result.arch_id} (evaluated as {result.representative}): "
             f"{result.string}",
             f"dataset {result.dataset}, {result.measure}"]
    width = max(len(k) for k, _, _ in result.entries)
    for key, levels, values in result.entries:
        if levels is None:
            lines.append(f"  {key:<{width}}  {values:.4f}")
        else:
            cells = "  ".join(f"{lv:g}: {v:.4f}" for lv, v in zip(levels, values))
            lines.append(f"  {key:<{width}}  [{result.level_names[key]}]  {cells}")
    return "\n".join(lines)


def run_query(args: argparse.Namespace) -> int:
    """Resolve the architecture, read only the needed files and print."""
    from pathlib import Path

    from robustnas.tables import open_bench
    from robustnas.tables.candidates import candidates

    bench = open_bench(args.bench_root, args.bench, args.run)
    arch: object = args.arch
    if not str(arch).strip().isdigit() and Path(str(arch)).suffix == ".json":
        arch = candidates(bench.space).load(str(arch))  # a genotype file of the bench's space
    result = bench.query(arch, args.dataset, args.key, args.measure)
    if args.json:
        data = result.to_dict()
        if args.ranks:
            data["ranks"] = rank_dict(bench, arch, result)
        print(json.dumps(data, indent=2))
    elif args.ranks:  # the values with their ranks, each once
        from robustnas.tables.lookup import rank_lines

        print(f"dataset {result.dataset}, {result.measure}")
        print("\n".join(rank_lines(bench, arch, args.dataset, args.key, args.measure)))
    else:
        print(format_result(result))
    return 0


def format_found(found: dict[str, dict[str, dict[str, float | None]]],
                 seeds: int) -> list[str]:
    """The table of the found architectures' numbers: one row per column of the bench
    (objective, clean, test accuracies), one ``mean ± sd`` cell per method."""
    methods = list(found)
    columns = list(dict.fromkeys(c for m in methods for c in found[m]))
    if not methods or not columns:
        return []

    def cell(stats: dict[str, float | None] | None) -> str:
        if not stats or stats["mean"] is None:
            return "-"
        sd = "" if stats["std"] is None else f" ± {stats['std']:.4f}"
        return f"{stats['mean']:.4f}{sd}"

    cells = [[cell(found[m].get(c)) for m in methods] for c in columns]
    key_w = max(len("column"), *(len(c) for c in columns))
    widths = [max(len(m), *(len(row[j]) for row in cells)) for j, m in enumerate(methods)]
    lines = [f"the best architecture each run found (mean over {seeds} seed"
             f"{'s' if seeds != 1 else ''}, ± sample sd):",
             "  " + f"{'column':<{key_w}}  " + "  ".join(f"{m:<{w}}" for m, w in
                                                       zip(methods, widths))]
    for column, row in zip(columns, cells):
        lines.append("  " + f"{column:<{key_w}}  " + "  ".join(f"{v:<{w}}" for v, w in
                                                              zip(row, widths)))
    return [line.rstrip() for line in lines]


def rank_dict(bench: object, arch: object, result: object) -> dict[str, object]:
    """``{key: [rank, cells]}`` (or ``{key: {level: [rank, cells]}}``) for ``--json --ranks``."""
    from robustnas.tables.base import ArchResult, TableBench

    assert isinstance(bench, TableBench) and isinstance(result, ArchResult)
    ranks: dict[str, object] = {}
    for key, levels, _ in result.entries:
        if levels is None:
            ranks[key] = list(bench.rank(arch, result.dataset, key, None, result.measure))
        else:
            ranks[key] = {f"{lv:g}": list(bench.rank(arch, result.dataset, key, lv,
                                                     result.measure)) for lv in levels}
    return ranks


def run_search(args: argparse.Namespace) -> int:
    """Run the table-driven searches, print the summary, write curves and the plot."""
    from robustnas.io import atomic_write_text, ensure_writable_dir
    from robustnas.tables import open_bench
    from robustnas.tables.nas import plot_curves, run_table_search

    bench = open_bench(args.bench_root, args.bench, args.run)
    key = args.key or bench.search_key
    level = args.eps
    levels = bench.series(args.dataset, key).levels
    if level is None and levels is not None:  # ε = 1/255 where tabulated, else the first
        level = 1.0 if any(abs(x - 1.0) < 1e-9 for x in levels) else levels[0]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    curves = run_table_search(bench, args.dataset, key, level, methods, args.budget,
                              args.seeds)
    out = ensure_writable_dir(args.out)
    atomic_write_text(out / "curves.json", json.dumps(curves.to_dict(), indent=2) + "\n")
    plot = plot_curves(curves, out / "best_found.png")
    print(f"objective: {curves.label}; best in table {curves.best_possible:.4f}; "
          f"{args.budget} queries x {args.seeds} seeds")
    if curves.coverage is not None and curves.coverage[0] < curves.coverage[1]:
        have, total = curves.coverage
        print(f"note: partial table: {have} of the {total} evaluated cells have a value for "
              f"this objective; a query of any other cell scores -inf (a wasted query), and "
              f"'best in table' is the best of those {have}")
    for name, s in curves.summary().items():
        sd = "" if s["final_std"] is None else f" ± {s['final_std']:.4f} (sd)"
        print(f"  {name:<10} final best {s['final_mean']:.4f}{sd}  "
              f"found the optimum in {100 * s['found_optimum']:.0f}% of runs")
    print("\n".join(format_found(curves.found_summary(), args.seeds)))
    print(f"written: {out / 'curves.json'}")
    print(f"written: {plot}")
    return 0
