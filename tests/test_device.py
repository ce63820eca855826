"""The accelerator path (``pytest -m cuda``): every command on the GPU, nothing falling back
to the CPU, checkpoints that move between devices.

Skipped where ``torch.cuda.is_available()`` is false, so CI (no GPU) stays green. To check
the tests themselves on a machine without a GPU, ``ROBUSTNAS_DEVICE_TESTS_ON_CPU=1`` runs
them on the CPU (``experiments/gpu_check.sh --device cpu --quick`` does so). Sizes are tiny:
these check that the path works, the benchmarks measure its speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.cuda

ON_CPU = os.environ.get("ROBUSTNAS_DEVICE_TESTS_ON_CPU") == "1"


@pytest.fixture
def device() -> str:
    """``cuda`` on a GPU machine (``cpu`` when the tests are checked on a CPU)."""
    if torch.cuda.is_available():
        return "cuda"
    if ON_CPU:
        return "cpu"
    pytest.skip("no CUDA device (ROBUSTNAS_DEVICE_TESTS_ON_CPU=1 runs these on the CPU)")


def gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _on(module: torch.nn.Module, device: str) -> bool:
    """Every parameter and buffer of ``module`` lives on ``device``: nothing fell back."""
    tensors = list(module.parameters()) + list(module.buffers())
    return bool(tensors) and all(t.device.type == device for t in tensors)


def _search_config(out: Path, device: str, **changes):
    from robustnas.search.config import SearchConfig

    base = dict(dataset="synthetic", dataset_options={"n_train": 64, "n_test": 32}, C=4,
                layers=3, batch_size=16, epochs=1, warmup_epochs=0, device=device, seed=0,
                draw_every=0, out=str(out))
    base.update(changes)
    return SearchConfig(**base)


@pytest.mark.parametrize("order,regularizer", [(1, "none"), (2, "none"), (1, "advrush"),
                                               (1, "lipschitz")])
def test_search_runs_on_the_device(tmp_path, device, order, regularizer):
    import yaml

    from robustnas.io import load_checkpoint
    from robustnas.search.api import run_search

    options = {"advrush": {"start_epoch": 0}} if regularizer == "advrush" else {}
    result = run_search(_search_config(tmp_path / "s", device, order=order,
                                       regularizer=regularizer, regularizer_options=options),
                        show_progress=False)
    assert result.genotype_path.is_file() and result.epochs_run == 1
    assert yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())["device"] == device
    assert load_checkpoint(tmp_path / "s" / "checkpoint.pt")["epoch"] == 1


def test_nb201_search_runs_on_the_device(tmp_path, device):
    from robustnas.search.api import run_search

    result = run_search(_search_config(tmp_path / "nb", device, space="nb201", layers=1),
                        show_progress=False)
    assert result.genotype_path.is_file()


def _retrain_config(out: Path, device: str, **changes):
    from robustnas.train import RetrainConfig

    base = dict(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16, epochs=1,
                max_steps_per_epoch=2, eval_n=32, eval_steps=1, eval_batch_size=16, steps=1,
                device=device, seed=0, out=str(out), cutout=2)
    base.update(changes)
    return RetrainConfig(**base)


@pytest.mark.parametrize("objective", ["none", "pgd", "trades", "fgsm-rs"])
@pytest.mark.parametrize("amp,channels_last", [(False, False), (True, False), (False, True)])
def test_retraining_every_objective_on_the_device(tmp_path, device, objective, amp,
                                                  channels_last):
    from robustnas.train import retrain

    if amp and device != "cuda":
        pytest.skip("bf16 autocast is CUDA-only")
    result = retrain(_retrain_config(tmp_path / "r", device, adversarial=objective, amp=amp,
                                     channels_last=channels_last), show_progress=False)
    assert _on(result.model, device)
    assert result.last_checkpoint.is_file()


def test_every_attack_on_the_device(tmp_path, device):
    from robustnas.evaluation import evaluate
    from robustnas.train import retrain

    trained = retrain(_retrain_config(tmp_path / "r", device), show_progress=False)
    attacks = "clean,fgsm,pgd2,cw"
    try:
        import pyautoattack  # noqa: F401
        attacks += ",apgd-ce"
    except ImportError:
        pass
    report = evaluate([str(trained.last_checkpoint)], attacks=attacks, eps="0.1", n=16,
                      batch_size=16, device=device, aa_steps=2, aa_queries=10)
    model = report.models[0]
    done = set(model["rows"][0]["attacks"])
    assert model["n"] == 16 and {"fgsm", "pgd2"} <= done and any(a.startswith("cw") for a in done)
    if "apgd-ce" in attacks:
        assert "apgd-ce" in done


def test_ensemble_on_the_device(tmp_path, device):
    from robustnas.train import retrain

    result = retrain(_retrain_config(tmp_path / "e", device, genotype=None,
                                     ensemble="DARTS_V2,PDARTS"),
                     show_progress=False)
    assert _on(result.model, device)


@pytest.mark.parametrize("first,second", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_moves_between_devices(tmp_path, device, first, second):
    """A run killed mid-epoch on one device resumes on the other and finishes there."""
    from pause_cli import PAUSE_RETRAIN_AFTER_STEPS

    from robustnas.train import retrain

    if device != "cuda":
        pytest.skip("needs a GPU and the CPU")
    out = tmp_path / "move"
    args = ["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers", "3",
            "--batch-size", "16", "--epochs", "2", "--device", first, "--checkpoint-every",
            "2", "--set", "max_steps_per_epoch=4", "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parent)}
    child = subprocess.Popen([sys.executable, "-c", PAUSE_RETRAIN_AFTER_STEPS, "3", *args],
                             env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "PAUSED"
    child.kill()
    child.wait()
    result = retrain(overrides={"out": str(out), "device": second}, resume=True,
                     show_progress=False)
    assert _on(result.model, second) and result.epochs_run == 2


def test_study_with_one_worker_per_visible_gpu(tmp_path, device):
    import yaml

    n = max(gpus(), 1)
    path = tmp_path / "gpu_study.yaml"
    path.write_text(yaml.safe_dump({
        "name": "gpu", "out": str(tmp_path / "gpu"), "seeds": list(range(n)),
        "architectures": ["DARTS_V2"], "training": {
            "dataset": "digits", "device": device, "C": 4, "layers": 3, "epochs": 1,
            "batch_size": 16, "cutout": 0, "max_steps_per_epoch": 2, "eval_every": 0},
        "evaluation": {"attacks": "clean,pgd2", "eps": [0.1], "n": 16}}))
    workers = []
    for i in range(n):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        if device == "cuda":
            env["CUDA_VISIBLE_DEVICES"] = str(i)
        workers.append(subprocess.Popen([sys.executable, "-m", "robustnas", "study", str(path),
                                         "--no-report"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * n, outputs
    assert f"{n}/{n} trials done" in "".join(outputs)


@pytest.mark.skipif(gpus() < 2, reason="needs two GPUs (NCCL)")
def test_torchrun_search_and_retraining_with_nccl(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", "2", "-m", "robustnas"]
    search = subprocess.run(base + ["search", "--dataset", "synthetic", "--channels", "4",
                                    "--layers", "3", "--batch-size", "16", "--epochs", "1",
                                    "--device", "cuda", "--set",
                                    "dataset_options={n_train: 64, n_test: 32}",
                                    "--set", "draw_every=0", "--out", str(tmp_path / "s")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert search.returncode == 0, search.stderr[-2000:]
    train = subprocess.run(base + ["retrain", "DARTS_V2", "--dataset", "digits", "--channels",
                                   "4", "--layers", "3", "--batch-size", "16", "--epochs", "1",
                                   "--device", "cuda", "--set", "max_steps_per_epoch=2",
                                   "--out", str(tmp_path / "r"), "--quiet"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]


def test_a_missing_gpu_is_an_error_not_a_silent_cpu_run(tmp_path):
    """Asking for a GPU that is not there stops with one line; it never runs on the CPU."""
    from robustnas.errors import RobustnasError
    from robustnas.runtime import resolve_device

    with pytest.raises(RobustnasError):
        resolve_device(f"cuda:{gpus() + 7}")
