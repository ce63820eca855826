"""Proxies at initialisation and their rank correlation with tabulated robustness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.space.nb201.sampler import cell_from_code
from robustnas.tables import RobustnessBench
from robustnas.tables.correlate import correlate, draw_heatmap, format_table, rank_correlations
from robustnas.tables.proxies import ProxySettings, compute_proxies, read_results

PGD_EPS = [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]


def make_bench(root, n: int = 12, seed: int = 0):
    """A format-exact robustness dataset of ``n`` cells with made-up accuracies (ids = codes)."""
    rng = np.random.default_rng(seed)
    codes = [int(c) for c in rng.choice(15625, size=n, replace=False)]
    meta = {"ids": {str(c): {"nb201-string": cell_from_code(c).to_string(), "isomorph": str(c)}
                    for c in codes}, "epsilons": {"pgd@Linf": PGD_EPS}}
    clean = {str(c): float(v) for c, v in zip(codes, rng.uniform(0.5, 0.95, n))}
    pgd = {str(c): [float(clean[str(c)] * f) for f in np.sort(rng.uniform(0, 1, 7))[::-1]]
           for c in codes}
    (root / "cifar10").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "cifar10" / "clean_accuracy.json").write_text(
        json.dumps({"cifar10": {"clean": {"accuracy": clean}}}))
    (root / "cifar10" / "pgd@Linf_accuracy.json").write_text(
        json.dumps({"cifar10": {"pgd@Linf": {"accuracy": pgd}}}))
    return codes, clean, pgd


def test_rank_correlations_reproduce_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(size=40)
    b[::3] = a[::3]  # some ties-free dependence
    n, tau, rho = rank_correlations(a, b)
    assert n == 40
    assert tau == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)
    assert rho == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert rank_correlations([1, 2, 3, 4], [10, 20, 30, 40])[1:] == (1.0, 1.0)
    assert rank_correlations([1, 2, 3, 4], [4, 3, 2, 1])[1:] == (-1.0, -1.0)
    # Known small table: one discordant pair of 6 -> tau = (5 - 1) / 6.
    assert rank_correlations([1, 2, 3, 4], [1, 3, 2, 4])[1] == pytest.approx(4 / 6)
    n, tau, _ = rank_correlations([1, np.nan, 3, 4], [1, 2, 3, np.inf])
    assert n == 2 and tau == pytest.approx(1.0)


def test_correlate_on_a_known_table(tmp_path):
    codes, clean, pgd = make_bench(tmp_path)
    rng = np.random.default_rng(2)
    records = {cell_from_code(c).to_string(): {
        "arch": cell_from_code(c).to_string(), "jacobian_frobenius": float(rng.normal()),
        "hessian_top_eigenvalue": -clean[str(c)], "lipschitz_log10": float(rng.normal()),
        "params": float(c % 7), "macs": clean[str(c)]} for c in codes}
    bench = RobustnessBench(tmp_path)
    results = correlate(records, bench, "cifar10", top_k=5)
    by = {(r.subset, r.column, r.proxy): r for r in results}
    assert by[("all", "clean", "macs")].kendall_tau == pytest.approx(1.0)
    assert by[("all", "clean", "hessian_top_eigenvalue")].spearman_rho == pytest.approx(-1.0)
    ids = sorted(clean)
    arch = {str(c): cell_from_code(c).to_string() for c in codes}
    jac = [records[arch[i]]["jacobian_frobenius"] for i in ids]
    col = [pgd[i][2] for i in ids]
    r = by[("all", "pgd@Linf@1", "jacobian_frobenius")]
    assert r.n == len(codes)
    assert r.kendall_tau == pytest.approx(kendalltau(jac, col).statistic, abs=1e-12)
    assert r.spearman_rho == pytest.approx(spearmanr(jac, col).statistic, abs=1e-12)
    top = sorted(ids, key=lambda i: -clean[i])[:5]
    r5 = by[("top5", "pgd@Linf@8", "params")]
    assert r5.n == 5
    assert r5.kendall_tau == pytest.approx(kendalltau(
        [records[arch[i]]["params"] for i in top], [pgd[i][6] for i in top]).statistic,
        abs=1e-12)
    text = format_table(results)
    assert "pgd@Linf@8" in text and "top5" in text
    png = draw_heatmap(results, tmp_path / "h.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_compute_proxies_is_resumable(tmp_path):
    settings = ProxySettings(dataset="digits", n=8, C=2, N=1, hessian_iters=2)
    cells = [cell_from_code(c) for c in (0, 3906, 15624)]  # all none, ..., all avg_pool
    out = tmp_path / "p.jsonl"
    records = compute_proxies(cells[:2], out, settings)
    assert len(records) == 2 and len(out.read_text().splitlines()) == 2
    zero = records[cells[0].to_string()]
    assert zero["jacobian_frobenius"] == pytest.approx(0.0, abs=1e-12)  # constant network
    assert zero["lipschitz_log10"] == float("-inf")
    # A kill mid-write leaves a cut line: it is dropped and recomputed.
    out.write_text(out.read_text() + '{"arch": "|none~0|+|no')
    calls = []
    records = compute_proxies(cells, out, settings, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 1)] and len(records) == 3
    assert set(read_results(out)) == {c.to_string() for c in cells}
    with pytest.raises(UsageError, match="other settings"):
        compute_proxies(cells, out, ProxySettings(dataset="digits", n=4, C=2, N=1))


@pytest.mark.slow
def test_cli_correlate(tmp_path, capsys):
    make_bench(tmp_path / "bench", n=6)
    out = tmp_path / "out"
    args = ["correlate", "--bench-root", str(tmp_path / "bench"), "--out", str(out),
            "--cells", "4", "--proxy-n", "8", "--channels", "2", "--cells-per-stage", "1",
            "--hessian-iters", "2", "--top-k", "3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "pgd@Linf@0.1" in text and "kendall_all.png" in text and "top3" in text
    saved = json.loads((out / "correlations.json").read_text())
    assert {r["subset"] for r in saved} == {"all", "top3"}
    assert main([*args, "--no-compute"]) == 0
    capsys.readouterr()
    assert main(["correlate", "--bench-root", str(tmp_path / "nowhere")]) == 2


def test_top_k_ties_are_broken_by_id_not_file_order(tmp_path):
    """Five cells share the clean accuracy at the cut: which of them are in the top-k must
    not depend on the order of the ids in the benchmark's file."""
    def top_members(order: list[int]) -> list[str]:
        root = tmp_path / f"b{order[0]}"
        codes = [11, 5, 300, 42, 7000, 9, 123]
        meta = {"ids": {str(c): {"nb201-string": cell_from_code(c).to_string(),
                                 "isomorph": str(c)} for c in codes}}
        clean = {"11": 0.9, "5": 0.5, "300": 0.5, "42": 0.5, "7000": 0.5, "9": 0.5, "123": 0.1}
        (root / "cifar10").mkdir(parents=True)
        (root / "meta.json").write_text(json.dumps(meta))
        ordered = {str(c): clean[str(c)] for c in order}
        (root / "cifar10" / "clean_accuracy.json").write_text(
            json.dumps({"cifar10": {"clean": {"accuracy": ordered}}}))
        proxy = {11: 0.0, 5: 1.0, 300: 2.0, 42: 3.0, 7000: -2.0, 9: -1.0, 123: 5.0}
        records = {cell_from_code(c).to_string(): {"arch": cell_from_code(c).to_string(),
                                                   "params": proxy[c]} for c in codes}
        results = correlate(records, RobustnessBench(root), "cifar10", ["clean"],
                            proxies=["params"], top_k=3)
        top = next(r for r in results if r.subset == "top3")
        return [top.n, top.kendall_tau]

    forward = top_members([11, 5, 300, 42, 7000, 9, 123])
    backward = top_members([123, 9, 7000, 42, 300, 5, 11])
    # The top 3 by id: 11, then 5 and 9 of the tied ones; 11-5 discordant, 11-9 concordant.
    assert forward == backward == [3, pytest.approx(0.0)]


def test_heatmap_fits_its_labels_and_flags_too_few_cells(tmp_path):
    from robustnas.tables.correlate import Correlation, small_n_warnings

    long_key = "aa_apgd-ce@Linf@0.5"
    results = [Correlation("all", col, proxy, n, tau, -tau)
               for col in ("clean", long_key) for proxy, tau in
               (("hessian_top_eigenvalue", 0.9), ("params", -0.2))
               for n in (40,)] + \
              [Correlation("top5", "clean", "params", 5, 1.0, 1.0)]
    assert small_n_warnings(results[:4]) == []
    (warning,) = small_n_warnings(results)
    assert warning.startswith("top5: τ and ρ over only 5 cells (fewer than 10)")
    from matplotlib.figure import Figure

    figures: list[Figure] = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    Figure.savefig = keep
    try:
        draw_heatmap(results, tmp_path / "all.png", "all")
        draw_heatmap(results, tmp_path / "top5.png", "top5")
    finally:
        Figure.savefig = original
    for fig in figures:  # every tick label inside the figure, none clipped
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        ax = fig.axes[0]
        for label in ax.get_xticklabels() + ax.get_yticklabels():
            extent = label.get_window_extent(renderer)
            assert extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1, label.get_text()
    strong = [t for t in figures[0].axes[0].texts if t.get_text() == "0.90"]
    assert strong and all(t.get_color() == "white" for t in strong)  # legible on dark red
    assert "n = 40 cells" in figures[0].axes[0].get_title()
    assert "hatched" not in figures[0].axes[0].get_title()
    assert "too few" in figures[1].axes[0].get_title()
    assert [p.get_gid() for p in figures[1].axes[0].patches] == ["few-cells"]


def test_correlate_without_a_benchmark_reports_the_proxy_values(tmp_path, capsys):
    """No --bench-root: the proxies of --cells seeded random cells, their spread and their
    pairwise Kendall τ (issue 19 item 5: proxies on a sample of NB201 cells)."""
    from robustnas.tables.proxy_summary import summarize

    args = ["correlate", "--cells", "4", "--proxies", "params,flops,nwot", "--channels", "4",
            "--cells-per-stage", "1", "--proxy-n", "8", "--out", str(tmp_path / "c")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "4 cells, proxies at initialisation" in text and "nwot" in text
    saved = json.loads((tmp_path / "c" / "proxy_summary.json").read_text())
    records = read_results(tmp_path / "c" / "proxies.jsonl")
    assert saved["cells"] == len(records) == 4
    params = [r["params"] for r in records.values()]
    assert saved["proxies"]["params"]["mean"] == pytest.approx(np.mean(params))
    assert saved["proxies"]["params"]["sd"] == pytest.approx(np.std(params, ddof=1))
    expected = kendalltau(params, [r["flops"] for r in records.values()]).statistic
    assert saved["kendall"]["params"]["flops"] == pytest.approx(expected)
    assert saved == json.loads(json.dumps(summarize(records, ["params", "flops", "nwot"])))
    # the same cells again: nothing measured, the same summary
    assert main(args) == 0 and "proxies:" not in capsys.readouterr().err
    for extra, needle in ((["--predictor", "rf"], "needs --bench-root"),
                          (["--cells", "0"], "--cells N says how many")):
        assert main([*args, *extra]) == 2
        assert needle in capsys.readouterr().err
