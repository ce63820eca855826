"""NARes through the shared machinery: info, retrain (and resume), evaluate, sample, a study's
sampler source, and the one-line refusal of a search (NARes has no supernet)."""

from __future__ import annotations

import json

import pytest
import yaml

from robustnas.cli import main

TINY = "1,1,1,1,1,1"  # one block per stage, widen factor 1: trains in seconds on a CPU


def test_info_counts_the_benchmark_networks(capsys):
    assert main(["info", "5,10,5,10,5,10", "--space", "nares", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 46_160_474 and info["space"] == "nares"
    assert main(["info", "4,10,4,10,4,10"]) == 0
    assert "36,479,194" in capsys.readouterr().out


def test_search_refuses_in_one_line(tmp_path, capsys):
    code = main(["search", "--space", "nares", "--dataset", "digits", "--out",
                 str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "space nares has no differentiable supernet" in err[0] and "table search" in err[0]
    assert not (tmp_path / "s").exists()


def test_retrain_resume_evaluate_and_sample(tmp_path, capsys):
    from robustnas.evaluation import evaluate
    from robustnas.space.nares.genotype import NAResGenotype
    from robustnas.space.spaces import spec_space
    from robustnas.train import retrain

    common = dict(genotype=TINY, dataset="digits", epochs=1, batch_size=32, cutout=0,
                  out=str(tmp_path / "run"), eval_n=32, val_n=32, max_steps_per_epoch=2)
    retrain(overrides=common, show_progress=False)
    saved = json.loads((tmp_path / "run" / "genotype.json").read_text())
    assert saved["format"] == "robustnas-nares-genotype"
    assert NAResGenotype.from_string(TINY, strict=False).to_string() == TINY
    retrain(overrides=common, resume=True, show_progress=False)  # the same architecture
    from robustnas.errors import UsageError

    with pytest.raises(UsageError, match="differs"):
        retrain(overrides={**common, "genotype": "2,1,1,1,1,1"}, resume=True,
                show_progress=False)
    report = evaluate(str(tmp_path / "run" / "best.pt"), dataset="digits", n=16,
                      attacks="clean,fgsm", eps="2/255", sanity=False, progress=False,
                      measures=True, measure_n=4)
    text = json.dumps(report.to_dict())
    assert "fgsm" in text and "lipschitz" in text
    assert main(["sample", "--space", "nares", "--n", "4", "--out", str(tmp_path / "s")]) == 0
    files = sorted((tmp_path / "s").glob("random_*.json"))
    assert len(files) == 4 and spec_space(files[0]) == "nares"


def test_a_study_samples_small_nares_networks(tmp_path):
    from robustnas.studies import run_study

    path = tmp_path / "nares.yaml"
    path.write_text(yaml.safe_dump({
        "name": "nares", "out": str(tmp_path / "study"), "seeds": [0],
        "architectures": [TINY, "1,2,1,1,1,1"],
        "training": {"dataset": "digits", "device": "cpu", "epochs": 1, "batch_size": 64,
                     "cutout": 0, "eval_every": 0, "max_steps_per_epoch": 1},
        "evaluation": {"attacks": "clean,fgsm", "eps": [0.05], "n": 16}}))
    with open(tmp_path / "log.txt", "w") as log:
        run = run_study(path, stream=log)
    assert run.complete
    assert len(list((tmp_path / "study").rglob("result.json"))) == 2
