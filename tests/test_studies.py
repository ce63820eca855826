"""Studies: spec validation, the runner on an Optuna SQLite storage, retries, the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from robustnas.errors import UsageError
from robustnas.space.darts.suggest import input_pairs, suggest_genotype
from robustnas.studies import load_study_spec, run_study, write_study_report
from robustnas.studies.storage import default_storage_url, open_storage

# Tiny trials: a 3-cell C=4 network, a few SGD steps on the digits, 32 test images.
TRAINING = {"dataset": "digits", "device": "cpu", "C": 4, "layers": 3, "epochs": 1,
            "batch_size": 64, "cutout": 0, "drop_path": 0, "auxiliary_weight": 0,
            "eval_every": 0, "max_steps_per_epoch": 2}
EVALUATION = {"attacks": "clean,fgsm,pgd2", "eps": [0.05, 0.1], "n": 32}


def _write(tmp_path: Path, name: str, architectures: list, seeds=(0, 1), steps: int = 2,
           heartbeat: int = 60) -> Path:
    import yaml

    training = {**TRAINING, "max_steps_per_epoch": steps}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "out": str(tmp_path / name), "seeds": list(seeds),
        "architectures": architectures, "training": training, "evaluation": EVALUATION,
        "heartbeat": heartbeat}))
    return path


def _trials(study_dir: Path, name: str) -> list:
    store = open_storage(default_storage_url(study_dir))
    return optuna.load_study(study_name=name, storage=store).get_trials(deepcopy=False)


def _complete_keys(trials: list) -> list[str]:
    return sorted(t.user_attrs["key"] for t in trials
                  if t.state == optuna.trial.TrialState.COMPLETE)


def test_spec_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, needle in (
            ("architectures: [DARTS_V2]\ntraining: {genotype: X}\n", "set per trial"),
            ("architectures: []\n", "non-empty list"),
            ("architectures: [{random: 0}]\n", "random"),
            ("architectures: [DARTS_V2]\nevaluation: {attacks: nope}\n", "nope"),
            ("architectures: [{sampler: grid, trials: 2}]\n", "sampler"),
            ("architectures: [DARTS_V2]\nseeds: [0, 0]\n", "distinct"),
            ("architectures: [DARTS_V2]\nbogus: 1\n", "bogus")):
        bad.write_text(text)
        with pytest.raises(UsageError, match=needle):
            load_study_spec(bad)


def test_unknown_architecture_fails_before_any_trial(tmp_path):
    path = _write(tmp_path, "unknown", ["NOT_A_NET"])
    with pytest.raises(Exception, match="NOT_A_NET"):
        run_study(path, report=False)
    assert not (tmp_path / "unknown" / "trials").exists()


def test_sampler_parameters_cover_the_darts_space():
    study = optuna.create_study(directions=["maximize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    seen_pairs, seen_ops = set(), set()
    for _ in range(40):
        trial = study.ask()
        geno = suggest_genotype(trial)
        for node in range(4):
            (op0, a), (op1, b) = geno.normal[2 * node:2 * node + 2]
            assert a < b < node + 2  # two distinct predecessors
            seen_pairs.add((node, f"{a},{b}"))
            seen_ops.update((op0, op1))
        study.tell(trial, [0.0, 0.0])
    assert {(n, p) for n in range(4) for p in input_pairs(n)} == seen_pairs
    assert "none" not in seen_ops and len(seen_ops) == 7


def test_sampler_parameters_cover_the_nb201_space():
    from robustnas.space.nb201.genotype import NB201Genotype
    from robustnas.space.nb201.ops import NB201_OPS
    from robustnas.studies.suggest import suggest_architecture

    study = optuna.create_study(directions=["maximize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    seen = [set() for _ in range(6)]
    for _ in range(60):
        trial = study.ask()
        geno = suggest_architecture("nb201", trial)
        assert isinstance(geno, NB201Genotype)
        assert NB201Genotype.from_string(geno.to_string()) == geno
        for edge, op in enumerate(geno.ops):
            seen[edge].add(op)
        study.tell(trial, [0.0, 0.0])
    assert all(ops == set(NB201_OPS) for ops in seen)  # `none` included, as in NB201
    with pytest.raises(UsageError, match="unknown search space .foo."):
        suggest_architecture("foo", study.ask())


def test_study_runs_resumes_and_reports(tmp_path, capsys):
    path = _write(tmp_path, "one", ["DARTS_V2", {"random": 1, "seed": 3}], steps=1)
    run = run_study(path)
    study_dir = tmp_path / "one"
    trials = _trials(study_dir, "one")
    keys = _complete_keys(trials)
    assert len(keys) == 4 and len(set(keys)) == 4
    out = capsys.readouterr().out
    assert "4/4 trials done" in out and "ETA" in out
    assert run.complete and (run.done, run.total) == (4, 4) and not run.failed
    # every trial keeps its run directory: checkpoint, evaluation report, result
    for t in trials:
        run_dir = Path(t.user_attrs["result"]["run_dir"])
        for name in ("last.pt", "config.yaml", "report.json", "result.json", "trial.log"):
            assert (run_dir / name).is_file(), (run_dir, name)
        assert t.values == [t.user_attrs["result"]["clean"], t.user_attrs["result"]["robust"]]
    # the random cells were written with their provenance
    assert len(list((study_dir / "genotypes").glob("random-s3-*.json"))) == 1
    # the report: every file, one row per architecture with n = 2 seeds
    names = {p.name for p in run.report_paths}
    assert {"study.md", "study.json", "study.csv", "pareto.png", "robust_vs_eps.png",
            "tensorboard"} <= names
    data = json.loads((study_dir / "report" / "study.json").read_text())
    assert [r["n"] for r in data["rows"]] == [2, 2]
    assert set(data["rows"][0]["eps"]["0.1"]) == {"fgsm", "pgd2", "worst_case", "hrs"}
    md = (study_dir / "report" / "study.md").read_text()
    assert "DARTS_V2" in md and " ± " in md
    assert any(p.name.startswith("events") for p in (study_dir / "tensorboard").iterdir())
    assert (study_dir / "report" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    # re-running resumes: nothing is left, nothing runs again
    again = run_study(path, report=False)
    assert again.trials_run == 0
    assert len(_trials(study_dir, "one")) == len(trials)
    # and the report command reads the study directory alone
    again_report = write_study_report(study_dir)
    assert again_report.table == run.table


def _worker(path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "robustnas", "study", str(path),
                             "--no-report", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_workers_share_one_sqlite_storage(tmp_path):
    path = _write(tmp_path, "pair", ["DARTS_V2", "PDARTS", {"random": 2, "seed": 0}])
    workers = [_worker(path), _worker(path)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = _trials(tmp_path / "pair", "pair")
    keys = _complete_keys(trials)
    assert len(keys) == 8 and len(set(keys)) == 8  # each (arch, seed) completed once
    # ... and run once: no failed trial, every trial.log holds exactly one training run
    assert not [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    for t in trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            log = (Path(t.user_attrs["result"]["run_dir"]) / "trial.log").read_text()
            assert log.count("epoch 1/1") == 1
    assert len({t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs}) == 2


@pytest.mark.slow
def test_killed_worker_trial_is_retried(tmp_path):
    path = _write(tmp_path, "kill", ["DARTS_V2", "PDARTS", "RACL"], seeds=[0], steps=40,
                  heartbeat=1)
    study_dir = tmp_path / "kill"
    victim = _worker(path)
    deadline = time.monotonic() + 300
    running = []
    while time.monotonic() < deadline and not running:
        time.sleep(0.5)
        if (study_dir / "study.journal").is_file():
            try:
                running = [t for t in _trials(study_dir, "kill")
                           if t.state == optuna.trial.TrialState.RUNNING]
            except Exception:  # the study is being created
                running = []
    assert running, "the first worker never started a trial"
    time.sleep(2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    killed_key = running[0].user_attrs["key"]
    rescuer = _worker(path)
    output = rescuer.communicate(timeout=600)[0]
    assert rescuer.returncode == 0, output
    trials = _trials(study_dir, "kill")
    assert _complete_keys(trials) == sorted(["DARTS_V2@0", "PDARTS@0", "RACL@0"])
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.user_attrs["key"] for t in failed] == [killed_key]
    assert "lost: its worker" in failed[0].user_attrs["error"]
    retried = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
               and t.user_attrs["key"] == killed_key]
    assert retried[0].user_attrs["retry_of"] == failed[0].number
    assert f"trial {killed_key}: its worker" in output and "retry 1/3 queued" in output


def test_search_sources_expand_relaxations_into_their_own_labels(tmp_path):
    """``relaxations:`` is a study dimension like ``regularizers:``; without it the labels
    are those of before; a combination a relaxation refuses fails the spec in one line."""
    from robustnas.studies.sources import expand_sources
    from robustnas.studies.spec import load_study_spec

    search = {"relaxations": ["darts", "gdas"], "regularizers": ["none", "jacobian"],
              "seeds": [0, 1], "set": {"epochs": 2, "C": 4, "layers": 3}}
    path = _write(tmp_path, "rel", [{"search": search},
                                    {"search": {"regularizers": ["none"], "seeds": [5]}}])
    jobs = expand_sources(load_study_spec(path), tmp_path / "rel").searches
    labels = [job.label for job in jobs]
    assert labels[:3] == ["search-darts-none-s0", "search-darts-none-s1",
                          "search-darts-jacobian-s0"]
    assert len(labels) == 9 and labels[-1] == "search-none-s5"
    relaxation = {job.label: job.config.get("relaxation", "darts") for job in jobs}
    assert relaxation["search-gdas-jacobian-s1"] == "gdas"
    assert relaxation["search-darts-none-s0"] == "darts"
    bad = _write(tmp_path, "bad", [{"search": {**search, "regularizers": ["sdarts-rs"]}}])
    with pytest.raises(UsageError) as info:
        expand_sources(load_study_spec(bad), tmp_path / "bad")
    assert "gdas" in str(info.value).lower() and "\n" not in str(info.value)


@pytest.mark.slow
def test_search_and_sampler_sources(tmp_path):
    search = {"regularizers": ["none", "advrush"], "seeds": [0],
              "set": {"epochs": 2, "warmup_epochs": 1, "C": 4, "layers": 3,
                      "max_steps_per_epoch": 2, "draw_every": 0,
                      "regularizer_options": {"advrush": {"start_epoch": 1}}}}
    path = _write(tmp_path, "src", [{"search": search}, {"sampler": "tpe", "trials": 2,
                                                         "seed": 0}], seeds=[0], steps=1)
    run_study(path, report=False)
    study_dir = tmp_path / "src"
    trials = _trials(study_dir, "src")
    assert _complete_keys(trials) == ["search-advrush-s0@0", "search-none-s0@0",
                                      "tpe-0002@0", "tpe-0003@0"]
    for label in ("search-none-s0", "search-advrush-s0"):
        geno = json.loads((study_dir / "searches" / label / "genotype.json").read_text())
        assert geno["provenance"]["regularizer"].startswith(label.split("-")[1])
    sampled = [t for t in trials if t.user_attrs.get("kind") == "sampled"]
    assert all("normal_n3_inputs" in t.params for t in sampled)
    # the report says how stable each regulariser's searched cells are (one seed each here)
    written = write_study_report(study_dir, tensorboard=False)
    agreement = {e["group"]: e for e in written.report.search_agreement}
    assert sorted(agreement) == ["search-advrush", "search-none"]
    assert agreement["search-none"]["runs"] == 1 and agreement["search-none"]["seeds"] == [0]
    saved = json.loads((study_dir / "report" / "study.json").read_text())
    assert saved["search_agreement"] == written.report.search_agreement
    assert "## Search agreement" in (study_dir / "report" / "study.md").read_text()


def test_report_aggregates_mean_sd_and_pareto(tmp_path):
    from robustnas.studies.report import build_report, to_csv

    def result(label, kind, seed, clean, worst):
        return {"label": label, "kind": kind, "seed": seed, "params": 1000, "macs": 2000,
                "clean": clean, "robust": worst, "members": [],
                "rows": {"0.1": {"eps": 0.1, "attacks": {"pgd20": worst},
                                 "worst_case": worst, "hrs": 2 * clean * worst / (clean + worst)}}}

    trials = [optuna.create_trial(values=[r["clean"], r["robust"]], user_attrs={"result": r})
              for r in (result("a", "arch", 0, 90, 10), result("a", "arch", 1, 80, 20),
                        result("b", "ensemble", 0, 70, 30), result("c", "random", 0, 60, 5))]
    report = build_report("s", trials, {"objective_eps": "0.1"})
    rows = {r["label"]: r for r in report.rows}
    assert rows["a"]["n"] == 2 and rows["a"]["clean"]["mean"] == 85
    assert rows["a"]["clean"]["sd"] == pytest.approx(7.0710678)  # sample sd, n - 1
    assert rows["b"]["clean"]["sd"] is None  # n = 1: no sd
    assert rows["a"]["pareto"] and rows["b"]["pareto"] and not rows["c"]["pareto"]
    assert "| a * | arch | 2 |" in report.table and "85.0 ± 7.1" in report.table
    csv_text = to_csv(report).splitlines()
    assert csv_text[0].startswith("label,kind,n,params,macs,pareto,clean_mean,clean_sd")
    assert len(csv_text) == 4
