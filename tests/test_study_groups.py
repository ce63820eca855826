"""Grouped comparisons of a study report (robustnas.studies.groups): no training, no storage."""

from __future__ import annotations

import json
import math
import re
import shlex
import statistics
from pathlib import Path

import optuna
import pytest
from scipy import stats

from robustnas.errors import UsageError
from robustnas.studies.groups import grouped_comparison, parse_groups, to_dict, to_markdown
from robustnas.studies.report import build_report, report_from_json
from robustnas.studies.report_files import write_study_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "RESULTS.md"


def _result(label: str, kind: str, seed: int, clean: float, eps=("0.05", "0.1")) -> dict:
    rows = {}
    for e in eps:
        worst = clean / (4 if e == "0.05" else 8)
        rows[e] = {"eps": float(e), "attacks": {"pgd20": worst}, "worst_case": worst,
                   "hrs": 2 * clean * worst / (clean + worst)}
    return {"label": label, "kind": kind, "seed": seed, "params": 1000, "macs": 2000,
            "clean": clean, "robust": rows["0.1"]["worst_case"], "members": [], "rows": rows}


def _report(results: list[dict]):
    trials = [optuna.create_trial(values=[r["clean"], r["robust"]], user_attrs={"result": r})
              for r in results]
    return build_report("s", trials, {"objective_eps": "0.1"})


@pytest.fixture()
def report():
    """a (2 seeds) and random-0 (3 seeds): cells; b@0.5: hand-crafted; ens: 1 trial, ε 0.1."""
    return _report([_result("a", "arch", 0, 90), _result("a", "arch", 1, 80),
                    _result("random-0", "random", 0, 85), _result("random-0", "random", 1, 75),
                    _result("random-0", "random", 2, 80),
                    _result("b@0.5", "arch", 0, 70), _result("b@0.5", "arch", 1, 60),
                    _result("b@0.5", "arch", 2, 65),
                    _result("ens", "ensemble", 0, 50, eps=("0.1",))])


def test_parse_groups_keywords_and_patterns():
    specs = parse_groups(["kind", " regularizer ", "hand-crafted (x)=*@*, kind:ensemble"])
    assert [s.keyword for s in specs] == ["kind", "regularizer", None]
    assert specs[2].name == "hand-crafted (x)" and specs[2].patterns == ("*@*", "kind:ensemble")
    assert specs[2].describe() == "hand-crafted (x)=*@*,kind:ensemble"


@pytest.mark.parametrize("bad", ["kinds", "=a", "x=", "x=a,,b", "x=kind:", "  "])
def test_parse_groups_rejects_malformed_specs(bad):
    with pytest.raises(UsageError, match="expected 'kind', 'regularizer' or NAME=PATTERN") as e:
        parse_groups([bad])
    assert "\n" not in str(e.value)


def test_parse_groups_rejects_a_name_given_twice():
    with pytest.raises(UsageError, match="'x' is given twice"):
        parse_groups(["x=a", "x=b"])


def test_groups_pool_trials_first_match_wins_and_unmatched_are_left_out(report):
    comparison = grouped_comparison(report, parse_groups(
        ["cells=a,random-*", "hand=*@*", "ens=kind:ensemble", "late=a", "none=zzz"]))
    groups = {g.name: g for g in comparison.groups}
    assert [g.name for g in comparison.groups] == ["cells", "hand", "ens", "late", "none"]
    cells = groups["cells"]
    assert (cells.trials, cells.labels) == (5, ["a", "random-0"])
    # each trial one value: the pooled mean is 82.0, not the mean of the two means (82.5)
    assert cells.stats["clean"]["mean"] == pytest.approx(82.0)
    assert cells.stats["clean"]["sd"] == pytest.approx(math.sqrt(32.5))  # sample sd
    assert cells.stats["0.1:worst"]["mean"] == pytest.approx(82.0 / 8)
    assert groups["late"].trials == 0 and groups["none"].trials == 0  # 'a' went to cells
    assert groups["ens"].stats["0.05:worst"]["n"] == 0  # not evaluated at 0.05
    assert comparison.ignored == []
    only_hand = grouped_comparison(report, parse_groups(["hand=*@*"]))
    assert only_hand.ignored == ["a", "ens", "random-0"]


def test_welch_test_matches_the_textbook_formula(report):
    comparison = grouped_comparison(report, parse_groups(["cells=a,random-*", "hand=*@*"]))
    test = next(t for t in comparison.tests if t.metric == "clean")
    x, y = [90, 80, 85, 75, 80], [70, 60, 65]
    vx, vy = statistics.variance(x) / len(x), statistics.variance(y) / len(y)
    t = (statistics.fmean(x) - statistics.fmean(y)) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    assert (test.a, test.b, test.difference) == ("cells", "hand", pytest.approx(17.0))
    assert test.p == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert [t.metric for t in comparison.tests] == ["clean", "0.05:worst", "0.1:worst"]


def test_markdown_table_bullets_and_small_groups(report):
    comparison = grouped_comparison(report, parse_groups(
        ["cells=a,random-*", "hand=*@*", "ens=kind:ensemble"]))
    text = to_markdown(comparison)
    lines = text.splitlines()
    assert lines[0] == "| group | trials (archs) | clean | 0.05:worst | 0.05:hrs | 0.1:worst " \
                       "| 0.1:hrs |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2].startswith("| cells | 5 (2) | 82.0 ± 5.7 | 20.5 ± 1.4 |")
    assert lines[4].startswith("| ens | 1 (1) | 50.0 | – | – | 6.2 | ")
    p = next(t.p for t in comparison.tests if t.metric == "clean")
    assert f"- clean: cells - hand = +17.0 points, Welch p = {p:.3f}" in lines
    assert "- clean: cells - ens = +32.0 points, no test (ens: fewer than 2 trials)" in lines
    assert any(line.startswith("- 0.1:worst: cells - hand = +2.1 points") for line in lines)
    assert not any(line.startswith("- 0.05:worst") for line in lines)  # objective ε only
    every = to_markdown(comparison, all_eps=True).splitlines()
    assert "- 0.05:worst: cells - ens: no test (ens: no values)" in every
    data = json.loads(json.dumps(to_dict(comparison), allow_nan=False))
    assert data["groups"][0]["stats"]["clean"]["n"] == 5 and len(data["tests"]) == 9


def test_kind_and_regularizer_keywords():
    report = _report([_result("search-none-s0", "search", 0, 60),
                      _result("search-lipschitz+advrush-s0", "search", 0, 70),
                      _result("search-lipschitz+advrush-s1", "search", 0, 72),
                      _result("random-0", "random", 0, 80)])
    by_reg = grouped_comparison(report, parse_groups(["regularizer"]))
    assert [(g.name, g.trials) for g in by_reg.groups] == [("search-lipschitz+advrush", 2),
                                                           ("search-none", 1)]
    assert by_reg.ignored == ["random-0"]
    by_kind = grouped_comparison(report, parse_groups(["cells=random-*", "kind"]))
    assert [(g.name, g.trials) for g in by_kind.groups] == [("cells", 1), ("search", 3)]
    with pytest.raises(UsageError, match="'search' comes from two specs"):
        grouped_comparison(report, parse_groups(["search=search-none-*", "kind"]))


def _documented_groups(study: str) -> list[str]:
    """The --group specs of the documented ``robustnas study report <study.json>`` command."""
    text = RESULTS.read_text().replace("\\\n", " ")
    line = next(m.group(0) for m in re.finditer(r"^robustnas study report \S+.*$", text, re.M)
                if f"experiments/results/{study}/study.json" in m.group(0))
    words = shlex.split(line)
    return [words[i + 1] for i, w in enumerate(words) if w == "--group"]


@pytest.mark.parametrize("study", ["seed000_digits", "regularizers_digits"])
def test_results_md_grouped_tables_are_regenerated_by_the_documented_command(study):
    report = report_from_json(ROOT / "experiments" / "results" / study / "study.json")
    comparison = grouped_comparison(report, parse_groups(_documented_groups(study)))
    text = to_markdown(comparison)
    assert text in RESULTS.read_text()  # the table and the Welch lines, verbatim
    if study == "seed000_digits":
        assert "| NAS cells (published) | 12 (4) | 83.3 ± 7.4 |" in text
        assert ("- clean: NAS cells (published) - hand-crafted (reduced width) = +21.1 points, "
                "Welch p = 0.013") in text
        assert [g.trials for g in comparison.groups] == [12, 9, 12, 30]
        assert comparison.ignored == []


def test_write_study_report_from_a_saved_report(tmp_path):
    source = ROOT / "experiments" / "results" / "regularizers_digits" / "study.json"
    saved = tmp_path / "study.json"
    saved.write_text(source.read_text())
    with pytest.raises(UsageError, match="group 'oops'"):
        write_study_report(saved, groups=["oops"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.json"]  # nothing written
    written = write_study_report(saved, groups=["regularizer"])
    assert saved.read_text() == source.read_text()  # the input is left as it is
    assert {p.name for p in written.paths} >= {"study.md", "study.csv", "groups.md",
                                               "groups.json"}
    section = to_markdown(written.groups)
    assert section in (tmp_path / "groups.md").read_text()
    study_md = (tmp_path / "study.md").read_text()
    assert "## Grouped comparison" in study_md and section in study_md
    assert written.table in study_md
    data = json.loads((tmp_path / "groups.json").read_text())
    assert [g["name"] for g in data["groups"]] == ["search-advrush", "search-lipschitz",
                                                   "search-none"]
    assert "Grouped" not in write_study_report(saved).paths[0].read_text()  # no groups: none
    with pytest.raises(UsageError, match="not a study report"):
        (tmp_path / "other.json").write_text("{}")
        write_study_report(tmp_path / "other.json")


def test_write_study_report_from_a_storage_with_groups(tmp_path):
    url = f"sqlite:///{tmp_path / 'trials.db'}"
    study = optuna.create_study(study_name="s", storage=url,
                                directions=["maximize", "maximize"])
    for r in (_result("random-0", "random", 0, 80), _result("random-0", "random", 1, 70),
              _result("b@0.5", "arch", 0, 60), _result("b@0.5", "arch", 1, 50)):
        study.add_trial(optuna.create_trial(values=[r["clean"], r["robust"]],
                                            user_attrs={"result": r}))
    written = write_study_report(tmp_path, storage=url, tensorboard=False,
                                 groups=["cells=random-*", "hand=*@*"])
    report_dir = tmp_path / "report"
    assert {"study.json", "groups.md", "groups.json"} <= {p.name for p in written.paths}
    assert "| cells | 2 (1) | 75.0 ± 7.1 |" in (report_dir / "groups.md").read_text()
    assert "- clean: cells - hand = +20.0 points, Welch p = 0.106" in \
        (report_dir / "study.md").read_text()


def test_study_plots_draw_the_chance_level():
    from types import SimpleNamespace

    from robustnas.studies.plots import chance_level, eps_figure, pareto_figure

    def row(label, clean, robust):
        stat = {"mean": clean, "sd": 1.0}
        return {"label": label, "kind": "arch", "clean": stat, "pareto": True,
                "robust": {"mean": robust, "sd": 1.0},
                "eps": {"0.1": {"worst_case": {"mean": robust}}}}

    trials = [{"classes": 10, "rows": {"0.1": {"eps": 0.1}}}] * 2
    report = SimpleNamespace(name="s", objective_eps="0.1", eps=["0.1"], trials=trials,
                             rows=[row("a", 90.0, 40.0), row("b", 80.0, 50.0)])
    assert chance_level(report) == pytest.approx(10.0)
    for fig in (pareto_figure(report), eps_figure(report)):
        ax = fig.axes[0]
        chance = [ln for ln in ax.get_lines() if ln.get_label() == "chance (10%)"]
        assert chance and list(chance[0].get_ydata()) == [10.0, 10.0]
    vertical = [ln for ln in pareto_figure(report).axes[0].get_lines()
                if list(ln.get_xdata()) == [10.0, 10.0]]
    assert vertical  # clean accuracy at chance, too
    report.trials = [{"rows": {"0.1": {"eps": 0.1}}}]  # recorded before classes were
    assert chance_level(report) is None
    assert not [ln for ln in eps_figure(report).axes[0].get_lines()
                if ln.get_label().startswith("chance")]
