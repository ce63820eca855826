"""Grouped comparisons of a study: architectures pooled into groups, Welch's t-tests between.

A group spec (``robustnas study report STUDY --group SPEC``, repeatable) is one of

- ``kind``: one group per architecture kind (``arch``, ``search``, ``random``, ...);
- ``regularizer``: one group per search regulariser, from the labels of ``search``-kind
  architectures, ``search-<reg>-s<seed>`` → group ``search-<reg>`` (pooling the search seeds);
- ``NAME=PATTERN[,PATTERN...]``: the architectures whose label matches one of the
  :func:`fnmatch.fnmatchcase` patterns; ``kind:KIND`` as a pattern selects a kind, e.g.
  ``"hand-crafted=*@*"`` or ``"ensembles=kind:ensemble"``.

Each trial (one architecture, one training seed) counts as one value, as if the trials of a
group were independent draws: a group's ``mean ± sd`` (sample sd, n - 1) is over all its
trials, and Welch's t-test (unequal variances) compares two groups' trials. A trial in no
group is left out (its label is listed in ``ignored``); a trial that two specs match belongs
to the first of them, so ``--group "cells=random-*" --group kind`` puts the remaining
architectures into per-kind groups.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from robustnas.errors import UsageError
from robustnas.studies.report import StudyReport, _stats, fmt

KEYWORDS = ("kind", "regularizer")
_SEARCH_LABEL = re.compile(r"(search-.+)-s\d+")


@dataclass(frozen=True)
class GroupSpec:
    """One parsed group spec: a keyword (``kind``, ``regularizer``) or a named pattern list."""

    name: str
    patterns: tuple[str, ...] = ()
    keyword: str | None = None

    def group_of(self, label: str, kind: str) -> str | None:
        """The name of the group this spec puts an architecture in, or ``None``."""
        if self.keyword == "kind":
            return kind
        if self.keyword == "regularizer":
            match = _SEARCH_LABEL.fullmatch(label)
            return match.group(1) if kind == "search" and match else None
        for pattern in self.patterns:
            if pattern.startswith("kind:"):
                if kind == pattern[len("kind:"):]:
                    return self.name
            elif fnmatchcase(label, pattern):
                return self.name
        return None

    def describe(self) -> str:
        """The spec as it would be given on the command line."""
        return self.keyword or f"{self.name}={','.join(self.patterns)}"


def parse_groups(specs: list[str]) -> list[GroupSpec]:
    """Parse ``--group`` specs (see the module docstring); a malformed one is a UsageError."""
    parsed = []
    for text in specs:
        text = text.strip()
        if text in KEYWORDS:
            parsed.append(GroupSpec(text, keyword=text))
            continue
        name, sep, rest = text.partition("=")
        patterns = tuple(p.strip() for p in rest.split(","))
        if not sep or not name.strip() or not all(p not in ("", "kind:") for p in patterns):
            raise UsageError(f"group {text!r}: expected 'kind', 'regularizer' or "
                             "NAME=PATTERN[,PATTERN...] (fnmatch patterns on the "
                             "architecture label, or kind:KIND)")
        parsed.append(GroupSpec(name.strip(), patterns))
    names = [s.name for s in parsed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"group {twice[0]!r} is given twice")
    return parsed


@dataclass
class Group:
    """One group: its member architectures and trial count, ``stats`` per metric.

    ``stats`` maps ``clean``, ``<eps>:worst`` and ``<eps>:hrs`` to ``{"mean", "sd", "n"}``;
    ``values`` holds the trials' values behind them (one per trial).
    """

    name: str
    spec: str
    labels: list[str]
    trials: int
    stats: dict[str, dict[str, Any]]
    values: dict[str, list[float]] = field(repr=False, default_factory=dict)


@dataclass
class WelchTest:
    """Welch's t-test of one metric between groups ``a`` and ``b``.

    ``difference`` is mean(a) - mean(b) in percentage points; ``p`` the two-sided p-value,
    ``None`` with the reason in ``note`` when there is no test.
    """

    metric: str
    a: str
    b: str
    difference: float | None
    p: float | None
    note: str = ""


@dataclass
class GroupedComparison:
    """Groups of a study report and the pairwise tests between them."""

    name: str
    objective_eps: str
    eps: list[str]
    groups: list[Group]
    tests: list[WelchTest]
    ignored: list[str]

    def metrics(self) -> list[str]:
        """The table's metric columns: ``clean``, then ``<eps>:worst``, ``<eps>:hrs`` per ε."""
        return _metrics(self.eps)


def _metrics(eps: list[str]) -> list[str]:
    return ["clean"] + [f"{e}:{m}" for e in eps for m in ("worst", "hrs")]


def _trial_values(trial: dict[str, Any], eps: list[str]) -> dict[str, float | None]:
    values: dict[str, float | None] = {"clean": trial.get("clean")}
    for e in eps:
        row = trial["rows"].get(e) or {}
        values[f"{e}:worst"] = row.get("worst_case")
        values[f"{e}:hrs"] = row.get("hrs")
    return values


def _finite(values: list[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def grouped_comparison(report: StudyReport, groups: list[GroupSpec]) -> GroupedComparison:
    """Pool the report's trials into ``groups`` and test every pair of groups.

    Groups appear in the order of the specs; a keyword's groups in the order of the report's
    rows (kind, then label). Named groups that match no trial are kept (0 trials, no
    tests), so that a mistyped pattern shows.
    """
    row_order = {row["label"]: i for i, row in enumerate(report.rows)}
    trials = sorted(report.trials, key=lambda t: (row_order.get(t["label"], len(row_order)),
                                                  t["label"], int(t["seed"])))
    # keyed by (spec index, name): a name that two specs give must not merge silently
    members: dict[tuple[int, str], list[dict[str, Any]]] = {}
    order: list[tuple[int, str]] = [(i, s.name) for i, s in enumerate(groups) if not s.keyword]
    ignored = []
    for trial in trials:
        found = _first_group(groups, trial)
        if found is None:
            ignored.append(trial["label"])
            continue
        if groups[found[0]].keyword and found not in members:
            order.append(found)
        members.setdefault(found, []).append(trial)
    order.sort(key=lambda item: item[0])  # stable: keyword groups keep the rows' order
    names = [name for _, name in order]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UsageError(f"group {clash[0]!r} comes from two specs; rename the named group")
    built = []
    for i, name in order:
        items = members.get((i, name), [])
        rows = [_trial_values(t, report.eps) for t in items]
        metrics = _metrics(report.eps)
        values = {m: _finite([r[m] for r in rows]) for m in metrics}
        built.append(Group(name, groups[i].describe(),
                           list(dict.fromkeys(t["label"] for t in items)), len(items),
                           {m: _stats(values[m]) for m in metrics}, values))
    tested = ["clean"] + [f"{e}:worst" for e in report.eps]
    tests = [_welch(m, a, b) for m in tested
             for j, a in enumerate(built) for b in built[j + 1:]]
    return GroupedComparison(report.name, report.objective_eps, list(report.eps), built, tests,
                             sorted(set(ignored)))


def _first_group(groups: list[GroupSpec], trial: dict[str, Any]) -> tuple[int, str] | None:
    """``(index of the first spec that takes the trial, group name)``, ``None`` if none."""
    for i, spec in enumerate(groups):
        name = spec.group_of(trial["label"], trial["kind"])
        if name is not None:
            return i, name
    return None


def _welch(metric: str, a: Group, b: Group) -> WelchTest:
    from scipy.stats import ttest_ind

    x, y = a.values[metric], b.values[metric]
    if not x or not y:  # an empty group, or no trial evaluated at this ε
        empty = a.name if not x else b.name
        return WelchTest(metric, a.name, b.name, None, None, f"{empty}: no values")
    difference = a.stats[metric]["mean"] - b.stats[metric]["mean"]
    if len(x) < 2 or len(y) < 2:
        few = a.name if len(x) < 2 else b.name
        return WelchTest(metric, a.name, b.name, difference, None,
                         f"{few}: fewer than 2 trials")
    with warnings.catch_warnings():  # zero variance in both groups: scipy warns, p is nan
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_ind(x, y, equal_var=False).pvalue)
    if not math.isfinite(p):
        return WelchTest(metric, a.name, b.name, difference, None, "no variance in either group")
    return WelchTest(metric, a.name, b.name, difference, p)


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.0005 else f"= {p:.3f}"


def to_markdown(comparison: GroupedComparison, *, all_eps: bool = False) -> str:
    """The grouped table, then one line per test.

    The tests listed are those of clean accuracy and of the worst case at the objective ε
    (the study's robustness objective); ``all_eps`` lists the worst case at every ε.
    """
    metrics = comparison.metrics()
    lines = ["| group | trials (archs) | " + " | ".join(metrics) + " |",
             "|" + "---|" * (len(metrics) + 2)]
    for g in comparison.groups:
        cells = [g.name, f"{g.trials} ({len(g.labels)})"] + [fmt(g.stats[m]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    objective = (comparison.objective_eps if comparison.objective_eps in comparison.eps
                 else comparison.eps[-1] if comparison.eps else "")
    shown = ["clean"] + [f"{e}:worst" for e in comparison.eps if all_eps or e == objective]
    bullets = []
    for metric in shown:
        for t in comparison.tests:
            if t.metric != metric:
                continue
            head = f"- {metric}: {t.a} - {t.b}"
            if t.difference is None:
                bullets.append(f"{head}: no test ({t.note})")
            elif t.p is None:
                bullets.append(f"{head} = {t.difference:+.1f} points, no test ({t.note})")
            else:
                bullets.append(f"{head} = {t.difference:+.1f} points, Welch p {_p_text(t.p)}")
    out = "\n".join(lines)
    if bullets:
        out += "\n\n" + "\n".join(bullets)
    if comparison.ignored:
        out += "\n\nIn no group (left out): " + ", ".join(comparison.ignored)
    return out


def to_dict(comparison: GroupedComparison) -> dict[str, Any]:
    """The comparison as a JSON-ready dict (every test, at every ε)."""
    return {"format": "robustnas-study-groups", "version": 1, "name": comparison.name,
            "objective_eps": comparison.objective_eps, "eps": comparison.eps,
            "groups": [{"name": g.name, "spec": g.spec, "labels": g.labels,
                        "trials": g.trials, "stats": g.stats} for g in comparison.groups],
            "tests": [{"metric": t.metric, "a": t.a, "b": t.b, "difference": t.difference,
                       "p": t.p, "note": t.note} for t in comparison.tests],
            "ignored": comparison.ignored}
