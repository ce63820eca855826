"""Architecture studies: many (architecture, training seed) trials in one Optuna storage.

Python API::

    from robustnas.studies import run_study, write_study_report
    run = run_study("experiments/studies/seed000_digits.yaml")   # one worker
    print(run.table)

A study file lists architecture sources, a training and an evaluation protocol and the
training seeds (:mod:`robustnas.studies.spec`); workers share an Optuna storage
(:mod:`robustnas.studies.storage`) and take pending trials until none is left
(:mod:`robustnas.studies.runner`); the report aggregates mean ± sd over seeds
(:mod:`robustnas.studies.report`).
"""

from robustnas.studies.rebuild import rebuild_storage
from robustnas.studies.report import StudyReport
from robustnas.studies.report_files import write_study_report
from robustnas.studies.runner import StudyInterrupted, StudyRun, run_study
from robustnas.studies.spec import StudySpec, load_study_spec

__all__ = ["StudyInterrupted", "StudyReport", "StudyRun", "StudySpec", "load_study_spec",
           "rebuild_storage", "run_study", "write_study_report"]
