"""``robustnas retrain`` under ``torchrun --nproc_per_node 2`` (gloo, CPU) against one process.

With ``sync_bn`` a 2-process step equals a 1-process step on the same global batch up to
rounding, so the final weights, the logged (all-reduced) losses and the held-out numbers of
the two runs must agree. PGD runs without a random start there, because each process draws
its random starts from its own stream. Without ``sync_bn`` every process normalises with its
shard's batch statistics; that run is checked against an independent computation of the
first step's loss: the mean of the two half-batch losses, not rank 0's half alone.

Each torchrun launch costs about 15 s on two shared cores (two interpreters importing torch).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torchrun_launch import finish as finish_launch
from torchrun_launch import launch, set_options

from robustnas.io import load_checkpoint
from robustnas.train import RetrainConfig, retrain

SEED = 3
# A tiny run on digits: global batch 16 (8 per process), 2 epochs of 2 steps, PGD-2.
# cutout 2: the 16-pixel DARTS default would blank out the whole 8x8 image.
COMMON = dict(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16, epochs=2,
              max_steps_per_epoch=2, drop_path=0.0, cutout=2, auxiliary_weight=0.4,
              eval_n=32, eval_steps=1, eval_batch_size=8, device="cpu", seed=SEED)
SYNC = dict(COMMON, adversarial="pgd", eps=0.1, step_size=0.03, steps=2, random_start=False,
            sync_bn=True)
PLAIN = dict(COMMON, adversarial="none", max_steps_per_epoch=1)
# Rounding differs between the two runs (global statistics summed in a different order).
ATOL = 1e-5
RTOL = 1e-5


def cli_args(options: dict, out: Path) -> list[str]:
    """``robustnas retrain`` arguments setting exactly ``options`` (via ``--set``)."""
    return ["retrain", "--out", str(out), "--quiet", *set_options(options)]


def start_torchrun(options: dict, out: Path) -> subprocess.Popen:
    """Start the retraining under ``torchrun --standalone --nproc_per_node 2``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return launch(["-m", "robustnas", *cli_args(options, out)], cwd=out.parent)


def finish(proc: subprocess.Popen) -> str:
    """Wait for a launch; its stdout (fails the test with its output on error)."""
    return finish_launch(proc, timeout=300)[0]


def assert_rank0_files_only(run: Path, stdout: str) -> None:
    """One set of outputs (rank 0's), and only rank 0 printed the result lines."""
    names = sorted(p.name for p in run.iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]
    assert len(events) == 1, names
    others = sorted(set(names) - set(events) - {".robustnas.lock"})
    assert others == ["best.pt", "config.yaml", "genotype.json", "history.csv",
                      "history.json", "last.pt", "summary.json"], names
    assert stdout.count("last: ") == 1, stdout
    assert not [n for n in names if ".tmp" in n], "a temporary file was left behind"


def assert_state_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            assert torch.allclose(a[key], b[key], rtol=RTOL, atol=ATOL), (
                key, (a[key] - b[key]).abs().max().item())
        else:  # num_batches_tracked: both counted every training forward
            assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Any]:
    """Both 2-process runs (launched together to save wall time) and the single-process
    sync-BN reference run in this process."""
    root = tmp_path_factory.mktemp("ddp")
    procs = {"sync": start_torchrun(SYNC, root / "sync2"),
             "plain": start_torchrun(PLAIN, root / "plain2")}
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        retrain(RetrainConfig(**SYNC, out=str(root / "sync1")), show_progress=False)
    finally:
        torch.set_num_threads(previous)
        stdout = {name: finish(proc) for name, proc in procs.items()}
    return {"root": root, "stdout": stdout}


def test_sync_bn_two_processes_match_one(runs):
    two, one = runs["root"] / "sync2", runs["root"] / "sync1"
    assert_rank0_files_only(two, runs["stdout"]["sync"])
    ck2, ck1 = load_checkpoint(two / "last.pt"), load_checkpoint(one / "last.pt")
    assert ck2["world_size"] == 2 and ck1["world_size"] == 1
    assert len(ck2["rng_per_rank"]) == 2
    assert (ck2["epoch"], ck2["step"]) == (2, 0)
    # the checkpoint holds plain BatchNorm weights (loadable by a single process)
    assert_state_close(ck2["model"]["state_dict"], ck1["model"]["state_dict"])
    # and training moved them well beyond the tolerance (the match is not vacuous)
    initial = _initial_network(SYNC, runs["root"] / "ref")[0].state_dict()
    moved = [k for k, v in ck1["model"]["state_dict"].items() if v.is_floating_point()
             and (v - initial[k]).abs().max() > 100 * ATOL]
    assert len(moved) > 20, moved
    # metrics are reduced over processes: images count the global batch, and every logged
    # number is the global-batch value of the single-process run
    assert len(ck2["history"]) == len(ck1["history"]) == 2
    for rec2, rec1 in zip(ck2["history"], ck1["history"]):
        assert rec2["images"] == rec1["images"] == 2 * 16
        assert rec2["eval_n"] == rec1["eval_n"] == 32
        for key in ("train_loss", "train_clean_loss", "train_clean_acc", "train_robust_loss",
                    "train_robust_acc", "eval_clean_loss", "eval_clean_acc",
                    "eval_robust_loss", "eval_robust_acc", "lr"):
            assert rec2[key] == pytest.approx(rec1[key], rel=RTOL, abs=ATOL), key
    summary = json.loads((two / "summary.json").read_text())
    single = json.loads((one / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["finished"]
    assert summary["best"]["epoch"] == single["best"]["epoch"]
    assert summary["best"]["value"] == pytest.approx(single["best"]["value"], abs=ATOL)


def _initial_network(options: dict, out: Path) -> tuple[torch.nn.Module, RetrainConfig, Any]:
    """The network as the trainer initialises it (built here from the same seed), the
    config and the data."""
    from robustnas.distributed import DistInfo
    from robustnas.runtime import seed_everything
    from robustnas.space.darts.catalogue import load_genotype
    from robustnas.train.setup import build_network, load_data

    config = RetrainConfig(**options, out=str(out))
    data = load_data(config, torch.device("cpu"), DistInfo())
    seed_everything(config.seed)  # as the trainer does right before building the network
    return build_network(config, load_genotype(config.genotype), data), config, data


def _first_step_loss(options: dict, out: Path) -> tuple[float, float, float]:
    """Loss of the first training step at the initial weights, computed here: per half of
    the global batch with that half's batch statistics (what each process does); plus the
    global-batch loss."""
    net, config, data = _initial_network(options, out)
    net.train()
    x, y = next(iter(data.train.epoch(0)))
    weight = config.auxiliary_weight

    def loss(xb: torch.Tensor, yb: torch.Tensor) -> float:
        with torch.no_grad():
            logits, aux = net(xb)
            return float(F.cross_entropy(logits, yb) + weight * F.cross_entropy(aux, yb))

    return loss(x[:8], y[:8]), loss(x[8:], y[8:]), loss(x, y)


def test_plain_ddp_runs_and_reduces_metrics(runs, tmp_path):
    run = runs["root"] / "plain2"
    assert_rank0_files_only(run, runs["stdout"]["plain"])
    ck = load_checkpoint(run / "last.pt")
    assert ck["world_size"] == 2 and (ck["epoch"], ck["step"]) == (2, 0)
    assert all(torch.isfinite(v).all() for v in ck["model"]["state_dict"].values()
               if v.is_floating_point())
    first = ck["history"][0]
    assert first["images"] == 16  # one global batch: both shards counted
    rank0, rank1, global_batch = _first_step_loss(PLAIN, tmp_path / "ref")
    assert abs(rank0 - rank1) > 1e-3, "halves too similar to tell reduced from rank-0 loss"
    assert first["train_loss"] == pytest.approx((rank0 + rank1) / 2, rel=1e-5, abs=1e-5)
    # plain DDP normalises per shard, so this is not the global-batch-statistics loss
    assert abs(first["train_loss"] - global_batch) > 1e-3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_completed"] == 2
