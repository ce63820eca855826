"""Agreement between searched cells (issue 20 item 2): matching edges, per-edge fractions,
the consensus cell, and the study report's section built from a study's search folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustnas.search.agreement import agreement, matching_edges
from robustnas.space.darts.catalogue import load_genotype
from robustnas.studies.agreement import search_agreement, to_markdown

DARTS_V2 = load_genotype("DARTS_V2")


def _changed(genotype, cell: str, position: int, op: str):
    """``genotype`` with the operation of one edge replaced."""
    edges = list(getattr(genotype, cell))
    edges[position] = (op, edges[position][1])
    return type(genotype)(**{**{f: getattr(genotype, f) for f in
                                ("normal", "normal_concat", "reduce", "reduce_concat")},
                             cell: tuple(edges)})


def test_matching_edges_count_shared_pairs_per_node():
    assert matching_edges(DARTS_V2, DARTS_V2) == 16
    other = _changed(DARTS_V2, "normal", 0, "max_pool_3x3")
    assert matching_edges(DARTS_V2, other) == 15
    # the order of a node's two edges does not matter
    swapped = type(DARTS_V2)(DARTS_V2.normal[1::-1] + DARTS_V2.normal[2:],
                             DARTS_V2.normal_concat, DARTS_V2.reduce, DARTS_V2.reduce_concat)
    assert matching_edges(DARTS_V2, swapped) == 16
    assert matching_edges(DARTS_V2.to_dict(), other.to_dict()) == 15


def test_agreement_fractions_and_consensus():
    other = _changed(DARTS_V2, "reduce", 3, "sep_conv_5x5")
    result = agreement([DARTS_V2, DARTS_V2, other])
    assert result.runs == 3 and result.edges == 16
    assert sorted(result.pair_matches) == [15, 15, 16]
    assert result.same_cell_fraction == pytest.approx(1 / 3)
    old_op, index = DARTS_V2.reduce[3]
    node = 1  # edges 2 and 3 belong to node 1
    assert result.edge_fractions[("reduce", node, old_op, index)] == pytest.approx(2 / 3)
    assert result.edge_fractions[("reduce", node, "sep_conv_5x5", index)] == pytest.approx(1 / 3)
    assert sorted(result.consensus["reduce"]) == sorted(DARTS_V2.reduce)
    assert result.consensus_support == pytest.approx((15 + 2 / 3) / 16)
    data = result.to_dict()
    assert data["matching_edges"] == {"pairs": [16, 15, 15], "mean": pytest.approx(15.3333),
                                      "min": 15, "max": 16}
    assert "3 runs: matching edges 15.3/16" in result.summary()
    single = agreement([DARTS_V2])
    assert single.same_cell_fraction is None and single.consensus_support == 1.0
    with pytest.raises(ValueError):
        agreement([{"normal": [["a", 0]], "reduce": []}])


def _write_search(study: Path, label: str, genotype, verdict: str) -> None:
    folder = study / "searches" / label
    folder.mkdir(parents=True)
    data = genotype.to_dict()
    data["provenance"] = {"decisiveness": {"verdict": verdict}}
    (folder / "genotype.json").write_text(json.dumps(data))


def test_study_search_agreement_groups_seeds_of_one_regularizer(tmp_path):
    other = _changed(DARTS_V2, "normal", 2, "skip_connect")
    _write_search(tmp_path, "search-none-s0", DARTS_V2, "clear")
    _write_search(tmp_path, "search-none-s1", other, "weak")
    _write_search(tmp_path, "search-advrush-s0", DARTS_V2, "clear")
    entries = search_agreement(tmp_path, ["search-none-s0", "search-none-s1",
                                          "search-advrush-s0", "search-missing-s3"])
    assert [e["group"] for e in entries] == ["search-advrush", "search-none"]
    none = entries[1]
    assert none["seeds"] == [0, 1] and none["verdicts"] == ["clear", "weak"]
    assert none["matching_edges"]["pairs"] == [15]
    text = to_markdown(entries)
    assert "| search-none | 0, 1 | clear, weak | 15.0/16 (15-15) | 0% |" in text
    assert "| search-advrush | 0 | clear | n/a (1 seed) | n/a | 1.00 |" in text
    assert to_markdown([]) == ""


def test_study_report_shows_and_keeps_the_agreement(tmp_path):
    from robustnas.studies import write_study_report

    _write_search(tmp_path, "search-none-s0", DARTS_V2, "clear")
    _write_search(tmp_path, "search-none-s1", DARTS_V2, "clear")
    entries = search_agreement(tmp_path, ["search-none-s0", "search-none-s1"])
    saved = tmp_path / "study.json"
    saved.write_text(json.dumps({
        "format": "robustnas-study-report", "version": 1, "name": "s", "objective_eps": "",
        "eps": [], "attacks": [], "rows": [], "trials": [], "search_agreement": entries}))
    written = write_study_report(saved)
    assert written.report.search_agreement == entries
    text = (tmp_path / "study.md").read_text()
    assert "## Search agreement" in text
    assert "| search-none | 0, 1 | clear, clear | 16.0/16 (16-16) | 100% | 1.00 |" in text
