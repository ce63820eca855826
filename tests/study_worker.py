"""A study worker whose trials are fake (a short sleep and a made-up result), for the fault
tests: the real runner, storage, claiming, heartbeats, retries and result files, without
the minutes of training. Run as ``python tests/study_worker.py STUDY.yaml STORAGE SECONDS``.

Every time a trial's work starts, a line ``<key> <pid>`` is appended to ``<study>/ran.log``
(so tests can count how often each trial ran).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def fake_result(label: str, kind: str, seed: int, run_dir: Path) -> dict[str, Any]:
    """A result record shaped like a real one (clean 50 + seed, robust 10 + seed)."""
    clean, robust = 50.0 + seed, 10.0 + seed
    return {"label": label, "kind": kind, "seed": seed, "run_dir": str(run_dir),
            "architecture": None, "params": 1000, "macs": 2000, "clean": clean,
            "robust": robust, "hrs": 2 * clean * robust / (clean + robust),
            "objective_eps": "0.1", "n": 32, "epochs": 1, "members": [],
            "rows": {"0.1": {"eps": 0.1, "attacks": {"pgd2": robust}, "worst_case": robust,
                             "hrs": 2 * clean * robust / (clean + robust)}}}


def install_fake_trials(seconds: float, log: Path | None = None) -> None:
    """Replace the training and evaluation of a trial by a sleep of ``seconds``."""
    import robustnas.studies.trial as trial_module

    def fake(spec: Any, run_dir: Path, arch: Any, seed: int, verbose: bool) -> dict[str, Any]:
        if log is not None:
            with open(log, "a") as f:
                f.write(f"{arch.label}@{seed} {os.getpid()}\n")
        time.sleep(seconds)
        if arch.overrides.get("fail"):
            raise RuntimeError(f"fake failure of {arch.label}")
        return fake_result(arch.label, arch.kind, seed, run_dir)

    trial_module._train_and_evaluate = fake


def main() -> int:
    study_file, storage, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    from robustnas.studies import load_study_spec, run_study

    spec = load_study_spec(study_file)
    install_fake_trials(seconds, Path(spec.out) / "ran.log")
    run = run_study(spec, storage=None if storage == "-" else storage, report=False)
    print(run.summary(), flush=True)
    return 0 if run.complete else 4


if __name__ == "__main__":
    sys.exit(main())
