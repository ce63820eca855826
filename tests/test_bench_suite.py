"""The device check's benchmark suite (``robustnas bench suite``, experiments/gpu_check.sh):
figures written as jobs finish, a budget shared by the jobs, the BENCHMARKS.md line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from robustnas.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_a_spent_budget_skips_jobs_and_says_so(tmp_path, capsys):
    out = tmp_path / "suite"
    assert main(["bench", "suite", "--device", "cpu", "--quick", "--only", "train-wrn,attack",
                 "--budget", "0.5", "--out", str(out)]) == 0
    lines = [json.loads(s) for s in (out / "results.jsonl").read_text().splitlines()]
    assert [r["job"] for r in lines] == ["train-wrn", "attack"]
    assert all("budget was spent" in r["error"] for r in lines)
    assert "**not measured**" in (out / "results.md").read_text()
    assert "train-wrn: not measured" in capsys.readouterr().out


def test_bad_options_are_one_line(tmp_path, capsys):
    assert main(["bench", "suite", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert main(["bench", "suite", "--budget", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown job 'nope'" in err[0] and "--budget" in err[1]


def test_summary_line_takes_the_baseline_and_the_fastest_row_of_one_family():
    from robustnas.benchmarks.suite import _summary_line

    env = {"date": "2026-12-02T00:00:00", "device": "cuda", "gpu": "H200", "torch": "2.13",
           "cuda": "13.0"}
    rows = [{"variant": "pgd-10 fp32", "images_per_s": "100.0", "speed_vs_fp32": "1.00x"},
            {"variant": "pgd-10 bf16", "images_per_s": "250.0", "speed_vs_fp32": "2.40x (2-3)"},
            {"variant": "standard fp32", "images_per_s": "900.0", "speed_vs_fp32": "9.00x"}]
    line = _summary_line(env, [{"job": "train-wrn", "result": {"rows": rows}},
                               {"job": "attack", "error": "exit 1"}])
    assert line.startswith("| 2026-12-02 | H200 | torch 2.13 / CUDA 13.0 |")
    assert "best pgd-10 bf16 250.0 img/s (2.40x speed vs fp32, paired)" in line
    assert "attack: not measured" in line


@pytest.mark.slow
def test_the_device_check_runs_end_to_end_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run([str(ROOT / "experiments" / "gpu_check.sh"), "--device", "cpu",
                           "--quick", "--out", str(out), "--budget", "600"],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(s) for s in (out / "results.jsonl").read_text().splitlines()]
    assert [r["job"] for r in records] == ["search", "train-darts", "train-preact",
                                           "train-wrn", "attack"]
    assert not [r for r in records if r.get("error")]
    assert "passed" in (out / "cuda_tests.txt").read_text()
    assert "BENCHMARKS.md line: |" in proc.stdout
