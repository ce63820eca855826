"""The DARTS-collapse guard: skip-connection rule, RobustDARTS eigenvalue-growth rule, resume."""

from __future__ import annotations

import pytest

from robustnas.errors import UsageError
from robustnas.search.collapse import CollapseGuard
from robustnas.space.darts.genotype import make_genotype

CONV = "sep_conv_3x3"


def _genotype(skips: int):
    ops = ["skip_connect"] * skips + [CONV] * (8 - skips)
    normal = [(op, i % 2) for i, op in enumerate(ops)]
    reduce = [("skip_connect", i % 2) for i in range(8)]  # never counted
    return make_genotype(normal, reduce)


def test_skip_rule_warns_or_stops():
    warn = CollapseGuard(max_skips=2)
    assert warn.check(_genotype(2), None, 0).message is None
    decision = warn.check(_genotype(3), None, 1)
    assert decision.message and "3 skip connections" in decision.message
    assert not decision.stop and decision.reasons == ("skips",)
    stop = CollapseGuard(max_skips=2, action="stop")
    assert stop.check(_genotype(4), None, 0).stop


def test_eigen_rule_compares_window_means_k_epochs_apart():
    guard = CollapseGuard(eigen_ratio=1.3, action="stop", window=2)
    values = [1.0, 1.0, 1.2, 1.25, 1.4, 1.5]
    decisions = [guard.check(_genotype(0), v, e) for e, v in enumerate(values)]
    # e=3: mean(1.2, 1.25)/mean(1, 1) = 1.225 ≤ 1.3; e=4: (1.25+1.4)/(1+1.2) = 1.2045;
    # e=5: (1.4+1.5)/(1.2+1.25) = 1.1837. Never above 1.3 → no stop.
    assert not any(d.stop for d in decisions)
    assert decisions[3].eigen_ratio == pytest.approx(1.225)
    assert decisions[5].eigen_ratio == pytest.approx(2.9 / 2.45)
    assert decisions[0].eigen_ratio is None and decisions[2].eigen_ratio is None

    guard = CollapseGuard(eigen_ratio=1.3, action="stop", window=2)
    genotypes = [_genotype(k) for k in range(6)]
    out = [guard.check(genotypes[e], v, e) for e, v in enumerate([1.0, 1.0, 1.0, 2.0, 4.0])]
    assert [d.stop for d in out] == [False, False, False, True, True]
    assert out[3].eigen_ratio == pytest.approx(1.5)
    assert out[3].reasons == ("eigenvalue",)
    assert out[3].fallback_epoch == 1  # RobustDARTS returns the architecture of epoch i − k
    assert out[3].fallback_genotype == genotypes[1].to_dict()


def test_eigen_rule_without_averaging_and_sparse_measurements():
    guard = CollapseGuard(eigen_ratio=1.5, window=2, average=False)
    # measured every 2 epochs; None in between
    seq = [(0, 1.0), (1, None), (2, 1.2), (3, None), (4, 2.0)]
    out = [guard.check(_genotype(0), v, e) for e, v in seq]
    assert out[2].eigen_ratio == pytest.approx(1.2)
    assert out[4].eigen_ratio == pytest.approx(2.0 / 1.2)
    assert out[4].message and not out[4].stop  # action "warn"
    assert out[3].eigen_ratio is None  # nothing measured this epoch: the rule waits


def test_robustdarts_threshold_equivalence():
    # RobustDARTS stops when λ̄(i−k)/λ̄(i) < 0.75, i.e. growth above 1/0.75.
    guard = CollapseGuard(eigen_ratio=1 / 0.75, window=1, action="stop")
    guard.check(_genotype(0), 3.0, 0)
    assert not guard.check(_genotype(0), 3.99, 1).stop
    assert guard.check(_genotype(0), 5.4, 2).stop


def test_state_dict_resume_gives_identical_decisions():
    values = [1.0, 1.1, 0.9, 1.3, 1.8, 2.5, 2.6]
    full = CollapseGuard(eigen_ratio=1.4, window=2)
    expected = [full.check(_genotype(e % 4), v, e) for e, v in enumerate(values)]
    first = CollapseGuard(eigen_ratio=1.4, window=2)
    for e, v in enumerate(values[:4]):
        first.check(_genotype(e % 4), v, e)
    resumed = CollapseGuard(eigen_ratio=1.4, window=2)
    resumed.load_state_dict(first.state_dict())
    got = [resumed.check(_genotype(e % 4), v, e) for e, v in enumerate(values) if e >= 4]
    assert got == expected[4:]
    assert any(d.message for d in got)
    state = resumed.state_dict()  # plain data, bounded by the window
    assert all(isinstance(e, int) and isinstance(v, float) for e, v in state["eigen"])
    assert len(state["genotypes"]) <= 4


def test_bad_arguments():
    for kwargs in ({"action": "explode"}, {"max_skips": -1}, {"eigen_ratio": 0},
                   {"window": 0}):
        with pytest.raises(UsageError):
            CollapseGuard(**kwargs)
    assert CollapseGuard().check(_genotype(8), 100.0, 0).message is None
