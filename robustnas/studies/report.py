"""The study report: one table of architecture x metrics as mean ± sd over training seeds.

``write_study_report(study_dir)`` reads the finished trials from the study's Optuna storage
and writes, under ``<study>/report/``: ``study.md`` (the table), ``study.json`` (the
aggregated rows and every trial's record), ``study.csv`` (one line per architecture, mean
and sd columns), ``pareto.png`` (clean vs robust accuracy, the Pareto front of the
architectures' means, ensembles marked) and ``robust_vs_eps.png`` (worst-case robust
accuracy against ε); the two figures and the table also go to TensorBoard under
``<study>/tensorboard`` (``tensorboard --logdir <study>`` shows them beside every trial's
training curves). Accuracies are percentages; sd is the sample standard deviation
(n - 1), left empty for n = 1.

``groups`` (``--group SPEC``, :mod:`robustnas.studies.groups`) adds ``groups.md`` and
``groups.json`` (architectures pooled into groups, Welch's t-tests between them) and the same
section at the end of ``study.md``. With search sources, ``study.md`` and ``study.json``
also give the agreement of the searched cells over the search seeds of each regulariser
(matching edges, the fraction of seeds deriving each edge, each seed's decisiveness;
:mod:`robustnas.studies.agreement`). ``study`` may also be a saved ``study.json`` report: the
report is then rebuilt from that file (no storage needed) and written beside it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from robustnas.errors import UsageError
from robustnas.studies.storage import DB_NAME, JOURNAL_NAME, default_storage_url, open_storage

REPORT_DIR = "report"


@dataclass
class StudyReport:
    """The aggregated study: ``rows`` (one per architecture), ``trials``, written ``paths``."""

    name: str
    rows: list[dict[str, Any]]
    trials: list[dict[str, Any]]
    eps: list[str]
    attacks: list[str]
    objective_eps: str
    failed: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    other_protocol: int = 0
    partial: list[dict[str, Any]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    table: str = ""
    #: agreement of the searched cells over search seeds (robustnas.studies.agreement)
    search_agreement: list[dict[str, Any]] = field(default_factory=list)


def load_trials(study_dir: Path, storage: str | None = None,
                name: str | None = None) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """``(study name, finished trials' result records, study user attributes)``."""
    study_dir = Path(study_dir)
    if storage is None:
        if not ((study_dir / DB_NAME).is_file() or (study_dir / JOURNAL_NAME).is_file()):
            raise UsageError(f"{study_dir}: no {JOURNAL_NAME} or {DB_NAME} here; pass the "
                             "study directory (or its YAML file) or --storage URL")
        storage = default_storage_url(study_dir)
    store = open_storage(storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(store)
             if not s.study_name.endswith(":search")]
    if name is None:
        if len(names) != 1:
            raise UsageError(f"storage holds {len(names)} studies ({', '.join(names)}); "
                             "choose one with --name")
        name = names[0]
    if name not in names:
        raise UsageError(f"no study {name!r} in the storage (found: {', '.join(names)})")
    study = optuna.load_study(study_name=name, storage=store)
    return name, study.get_trials(deepcopy=False), dict(study.user_attrs)


def _current(trial: Any, attrs: dict[str, Any]) -> bool:
    """Whether a trial belongs to the study's current protocol and architectures (studies
    made before protocols were recorded keep every trial)."""
    protocols = attrs.get("protocols")
    if protocols is None:
        return True
    key, protocol = trial.user_attrs.get("key"), trial.user_attrs.get("protocol")
    if key in protocols:
        return protocols[key] == protocol
    return (trial.user_attrs.get("kind") == "sampled" and protocol is not None
            and protocol == attrs.get("sampler_protocol"))


def build_report(name: str, trials: list[Any], attrs: dict[str, Any]) -> StudyReport:
    """Aggregate finished trials (``optuna`` frozen trials) into per-architecture rows.

    Only trials of the study's current protocol and architectures count (``attrs``: the
    study's user attributes, as the runner records them); the others are counted in
    ``other_protocol``. A row with fewer trials than seeds is listed in ``partial`` with
    the reason of each missing seed."""
    states = optuna.trial.TrialState
    every = list(trials)
    trials = [t for t in every if _current(t, attrs)]
    other = sum(1 for t in every if t.state == states.COMPLETE and not _current(t, attrs))
    results = [t.user_attrs["result"] for t in trials
               if t.state == states.COMPLETE and "result" in t.user_attrs]
    done_keys = {t.user_attrs.get("key") for t in trials if t.state == states.COMPLETE}
    active_keys = {t.user_attrs.get("key") for t in trials
                   if t.state in (states.WAITING, states.RUNNING)}
    failed_by_key: dict[Any, str] = {}
    for t in trials:
        key = t.user_attrs.get("key")
        if t.state == states.FAIL and t.user_attrs.get("error") \
                and not t.user_attrs.get("interrupted") \
                and key not in done_keys and key not in active_keys:
            failed_by_key[key] = str(t.user_attrs.get("error"))
    failed = [{"key": k, "error": e} for k, e in failed_by_key.items()]
    pending = len(active_keys - done_keys)
    # one record per (label, seed): a trial re-run after a lost race counts once
    unique: dict[tuple[str, int], dict[str, Any]] = {}
    for r in results:
        unique.setdefault((r["label"], int(r["seed"])), r)
    results = list(unique.values())
    eps: list[str] = []
    attacks: list[str] = []
    for r in results:
        for e, row in r["rows"].items():
            eps += [e] if e not in eps else []
            attacks += [a for a in row["attacks"] if a not in attacks]
    eps.sort(key=lambda e: next(r["rows"][e]["eps"] for r in results if e in r["rows"]))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["label"], []).append(r)
    rows = [_aggregate(label, items, eps, attacks) for label, items in groups.items()]
    order = {"arch": 0, "search": 1, "random": 2, "sampled": 3, "ensemble": 4}
    rows.sort(key=lambda row: (order.get(row["kind"], 9), row["label"]))
    objective = str(attrs.get("objective_eps") or (eps[-1] if eps else ""))
    report = StudyReport(name, rows, sorted(results, key=lambda r: (r["label"], r["seed"])),
                         eps, attacks, objective, failed, pending, other_protocol=other)
    report.partial = _partial(rows, attrs.get("seeds"), failed_by_key, active_keys)
    _mark_pareto(report)
    report.table = markdown_table(report)
    return report


def report_from_json(path: str | Path) -> StudyReport:
    """The report saved in a ``study.json`` (as :func:`write_study_report` writes it)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable study report ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != "robustnas-study-report":
        raise UsageError(f"{path}: not a study report (no format 'robustnas-study-report')")
    report = StudyReport(data["name"], data["rows"], data["trials"], data["eps"],
                         data["attacks"], data["objective_eps"], data.get("failed", []),
                         data.get("pending", 0))
    report.search_agreement = list(data.get("search_agreement", []))
    report.table = markdown_table(report)
    return report


def _partial(rows: list[dict[str, Any]], seeds: list[int] | None, failed: dict[Any, str],
             active: set[Any]) -> list[dict[str, Any]]:
    """The rows with fewer trials than seeds, and why each missing seed is missing."""
    if not seeds:
        return []
    out = []
    for row in rows:
        if row["kind"] == "sampled" or row["n"] >= len(seeds):
            continue
        missing = {}
        for seed in seeds:
            if seed in row["seeds"]:
                continue
            key = f"{row['label']}@{seed}"
            missing[str(seed)] = ("failed: " + failed[key] if key in failed else
                                  "pending or running" if key in active else "not run")
        out.append({"label": row["label"], "n": row["n"], "seeds": len(seeds),
                    "missing": missing})
    return out


def _stats(values: list[float | None]) -> dict[str, Any]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(vals) if len(vals) > 1 else None
    return {"mean": statistics.fmean(vals), "sd": sd, "n": len(vals)}


def _aggregate(label: str, items: list[dict[str, Any]], eps: list[str],
               attacks: list[str]) -> dict[str, Any]:
    first = items[0]
    row: dict[str, Any] = {"label": label, "kind": first["kind"], "n": len(items),
                           "seeds": sorted(int(r["seed"]) for r in items),
                           "architecture": first.get("architecture"),
                           "members": first.get("members", []),
                           "params": _stats([r.get("params") for r in items])["mean"],
                           "macs": _stats([r.get("macs") for r in items])["mean"],
                           "clean": _stats([r["clean"] for r in items]),
                           "robust": _stats([r["robust"] for r in items]), "eps": {}}
    for e in eps:
        cell: dict[str, Any] = {}
        for a in attacks:
            cell[a] = _stats([r["rows"][e]["attacks"].get(a) for r in items if e in r["rows"]])
        cell["worst_case"] = _stats([r["rows"][e]["worst_case"] for r in items
                                     if e in r["rows"]])
        cell["hrs"] = _stats([r["rows"][e]["hrs"] for r in items if e in r["rows"]])
        row["eps"][e] = cell
    return row


def _mark_pareto(report: StudyReport) -> None:
    """Flag rows whose (clean, robust) means no other row dominates."""
    points = [(r["clean"]["mean"], r["robust"]["mean"]) for r in report.rows]
    for row, (c, rob) in zip(report.rows, points):
        row["pareto"] = c is not None and rob is not None and not any(
            c2 is not None and r2 is not None and c2 >= c and r2 >= rob and (c2 > c or r2 > rob)
            for c2, r2 in points)


def fmt(stat: dict[str, Any], digits: int = 1) -> str:
    """``mean ± sd`` (just the mean for n = 1, ``–`` when missing)."""
    if stat is None or stat.get("mean") is None:
        return "–"
    if stat.get("sd") is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def _columns(report: StudyReport) -> list[tuple[str, str, str]]:
    cols = []
    for e in report.eps:
        cols += [(f"{a} @{e}", e, a) for a in report.attacks]
        if len(report.attacks) > 1:
            cols.append((f"worst @{e}", e, "worst_case"))
    cols += [(f"HRS @{e}", e, "hrs") for e in report.eps]
    return cols


def markdown_table(report: StudyReport) -> str:
    """The study table in Markdown."""
    cols = _columns(report)
    head = ["architecture", "kind", "n", "params (M)", "MMACs", "clean", *[c[0] for c in cols]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.rows:
        label = r["label"] + (" *" if r.get("pareto") else "")
        cells = [label, r["kind"], str(r["n"]),
                 f"{r['params'] / 1e6:.3f}" if r["params"] is not None else "–",
                 f"{r['macs'] / 1e6:.2f}" if r["macs"] is not None else "–", fmt(r["clean"])]
        cells += [fmt(r["eps"][e][key]) for _, e, key in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(report: StudyReport) -> str:
    """The full Markdown report."""
    out = [f"# Study {report.name}", "",
           f"Accuracies in % on the test images, mean ± sd over training seeds (n = seeds). "
           f"worst = per-sample worst case over the attacks (robust accuracy); "
           f"HRS = 2·clean·worst/(clean + worst). * = on the Pareto front of clean vs "
           f"worst-case accuracy at ε = {report.objective_eps}.", "", report.table, ""]
    if report.pending:
        out += [f"**Partial**: {report.pending} trials still pending or running.", ""]
    if report.partial:
        out += ["**Partial rows** (n below the number of seeds):", ""]
        out += [f"- {p['label']}: n = {p['n']} of {p['seeds']}; "
                + "; ".join(f"seed {s}: {why.splitlines()[0][:200]}"
                            for s, why in p["missing"].items()) for p in report.partial]
        out += [""]
    if report.other_protocol:
        out += [f"{report.other_protocol} finished trials of an earlier protocol (the study "
                "file changed) are kept in the storage and left out of this table.", ""]
    if report.failed:
        out += ["## Failed trials", ""] + [f"- {f['key']}: {f['error']}"
                                           for f in report.failed] + [""]
    if report.search_agreement:
        from robustnas.studies.agreement import to_markdown as agreement_markdown

        out += [agreement_markdown(report.search_agreement)]
    return "\n".join(out)


def to_csv(report: StudyReport) -> str:
    """One line per architecture; ``<metric>_mean`` and ``<metric>_sd`` columns."""
    cols = _columns(report)
    head = ["label", "kind", "n", "params", "macs", "pareto", "clean_mean", "clean_sd"]
    for name, _, _ in cols:
        key = name.replace(" @", "@").replace(" ", "_")
        head += [f"{key}_mean", f"{key}_sd"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for r in report.rows:
        line = [r["label"], r["kind"], r["n"], r["params"], r["macs"], int(bool(r["pareto"])),
                r["clean"]["mean"], r["clean"]["sd"]]
        for _, e, key in cols:
            line += [r["eps"][e][key]["mean"], r["eps"][e][key]["sd"]]
        writer.writerow(["" if v is None else v for v in line])
    return buf.getvalue()


