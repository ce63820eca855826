"""Writing a study's report files: ``study.md``, ``study.json``, ``study.csv``, figures and,
with ``--group``, ``groups.md``/``groups.json`` (the aggregation is :mod:`.report`, the grouped
comparison :mod:`.groups`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from robustnas.errors import UsageError
from robustnas.io import atomic_write_text
from robustnas.studies import groups as grouping
from robustnas.studies.groups import GroupedComparison
from robustnas.studies.report import (
    REPORT_DIR,
    StudyReport,
    build_report,
    load_trials,
    report_from_json,
    to_csv,
    to_markdown,
)

_GROUPS_NOTE = ("Mean ± sd over trials (each trial one value, all architectures of a group "
                "pooled; sample sd); Welch's t-test between groups, difference of the means "
                "in points.")


@dataclass
class WrittenReport:
    """Paths written by :func:`write_study_report`, the Markdown table and the report.

    ``groups`` is the grouped comparison when groups were asked for
    (``robustnas.studies.groups.to_markdown(groups)`` is its Markdown).
    """

    paths: list[Path]
    table: str
    report: StudyReport
    groups: GroupedComparison | None = None


def write_study_report(study: str | Path, *, storage: str | None = None,
                       name: str | None = None, tensorboard: bool = True,
                       groups: list[str] | None = None) -> WrittenReport:
    """Aggregate a study and write its report files.

    ``study`` is the study directory or YAML (report under ``<study>/report/``) or a saved
    report ``study.json`` (report files rewritten beside it, the input itself kept; no
    TensorBoard). ``groups`` are ``--group`` specs (see
    :func:`robustnas.studies.groups.parse_groups`).
    """
    specs = grouping.parse_groups(groups) if groups else None  # bad specs fail before reading
    saved = Path(study).suffix == ".json"
    report, out, tb_dir = _load_report(Path(study), storage, name, tensorboard)
    markdown = to_markdown(report)
    comparison = grouping.grouped_comparison(report, specs) if specs else None
    if comparison is not None:
        section = _GROUPS_NOTE + "\n\n" + grouping.to_markdown(comparison)
        markdown += "\n## Grouped comparison\n\n" + section + "\n"
    paths = [out / "study.md"]
    atomic_write_text(out / "study.md", markdown + "\n")
    if not saved:  # a saved report is the input: left as it is
        paths.append(out / "study.json")
        atomic_write_text(out / "study.json", json.dumps({
            "format": "robustnas-study-report", "version": 1, "name": report.name,
            "objective_eps": report.objective_eps, "eps": report.eps,
            "attacks": report.attacks, "rows": report.rows, "trials": report.trials,
            "failed": report.failed, "pending": report.pending, "partial": report.partial,
            "other_protocol": report.other_protocol,
            "search_agreement": report.search_agreement}, indent=2) + "\n")
    paths.append(out / "study.csv")
    atomic_write_text(out / "study.csv", to_csv(report))
    if comparison is not None:
        paths += [out / "groups.md", out / "groups.json"]
        atomic_write_text(out / "groups.md",
                          f"# Study {report.name}: grouped comparison\n\n{section}\n")
        atomic_write_text(out / "groups.json",
                          json.dumps(grouping.to_dict(comparison), indent=2) + "\n")
    if report.rows:
        from robustnas.studies.plots import write_figures

        paths += write_figures(report, out, tb_dir)
    report.paths = paths
    return WrittenReport(paths, report.table, report, comparison)


def _load_report(study: Path, storage: str | None, name: str | None,
                 tensorboard: bool) -> tuple[StudyReport, Path, Path | None]:
    """``(report, directory to write it to, TensorBoard directory or None)``."""
    if study.suffix == ".json":
        if storage is not None:
            raise UsageError(f"{study}: a saved report reads no storage; drop --storage")
        report = report_from_json(study)
        if name is not None and name != report.name:
            raise UsageError(f"{study} is the report of study {report.name!r}, not {name!r}")
        return report, study.parent, None
    if study.is_file():
        from robustnas.studies.spec import load_study_spec

        spec = load_study_spec(study)
        study, name = Path(spec.out), name or spec.name
    if not study.is_dir():
        raise UsageError(f"study directory {study} does not exist")
    name, trials, attrs = load_trials(study, storage, name)
    report = build_report(name, trials, attrs)
    from robustnas.studies.agreement import search_agreement

    searched = {t.user_attrs["arch"].get("label") for t in trials
                if t.user_attrs.get("kind") == "search" and isinstance(t.user_attrs.get("arch"),
                                                                       dict)}
    report.search_agreement = search_agreement(study, searched - {None})
    return report, study / REPORT_DIR, study / "tensorboard" if tensorboard else None
