"""``robustnas search`` under ``torchrun --nproc_per_node 2`` (gloo, CPU) against one process.

With global batch norm (the default ``sync_bn``) a 2-process step is a 1-process step on the
same global batch up to rounding, so α must agree to 1e-5 after every epoch and the genotype
must be the same; the two processes must hold bit-identical α after every epoch. Tiny
supernets (2 nodes per cell, 3 cells, C = 4) on digits keep each launch near 20 s on two
shared cores (most of it is two interpreters importing torch, and one gloo collective per
batch norm).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from torchrun_launch import finish, launch, set_options

from robustnas.io import load_checkpoint
from robustnas.search import SearchConfig
from robustnas.search.searcher import Searcher

TINY = dict(dataset="digits", C=4, layers=3, steps=2, batch_size=16, epochs=2,
            max_steps_per_epoch=2, arch_lr=0.03, seed=5, device="cpu", threads=1,
            draw_every=0)
TOL = 1e-5

# Run by each process under torchrun: a search that also saves this process's α after
# every epoch (in a folder of its own, so that the run directory shows only rank 0's files).
RECORDER = '''
import sys, torch, yaml
from pathlib import Path
from robustnas.search import SearchConfig
from robustnas.search.searcher import Searcher

options, record = yaml.safe_load(Path(sys.argv[1]).read_text()), Path(sys.argv[2])

class Recording(Searcher):
    def _end_epoch(self):
        stopped = super()._end_epoch()
        torch.save([p.detach().clone() for p in self.model.arch_parameters()],
                   record / f"alpha_rank{self.dist.rank}_epoch{self.epoch}.pt")
        return stopped

Recording(SearchConfig(**options), show_progress=False).run()
'''


def _search_args(options: dict, out: Path, *extra: str) -> list[str]:
    return ["-m", "robustnas", "search", "--out", str(out), "--quiet", *extra,
            *set_options(options)]


class Recording(Searcher):
    """The in-process twin of RECORDER's class: saves α after every epoch."""

    record: Path

    def _end_epoch(self):  # noqa: ANN202
        stopped = super()._end_epoch()
        torch.save([p.detach().clone() for p in self.model.arch_parameters()],
                   self.record / f"alpha_rank{self.dist.rank}_epoch{self.epoch}.pt")
        return stopped


def _alphas(record: Path, rank: int, epoch: int) -> list[torch.Tensor]:
    return torch.load(record / f"alpha_rank{rank}_epoch{epoch}.pt", weights_only=True)


def _start_recorded(options: dict, root: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """Launch a recorded 2-process search of ``options`` into ``root/name``."""
    record = root / f"{name}-record"
    record.mkdir()
    (root / f"{name}.json").write_text(json.dumps(dict(options, out=str(root / name))))
    script = root / "recorder.py"
    script.write_text(RECORDER)
    return launch([str(script), str(root / f"{name}.json"), str(record)], cwd=root), record


def _run_recorded_here(options: dict, root: Path, name: str) -> Path:
    record = root / f"{name}-record"
    record.mkdir()
    searcher = Recording(SearchConfig(**options, out=str(root / name)), show_progress=False)
    searcher.record = record
    searcher.run()
    return record


def _assert_match(two: Path, one: Path, epochs: int, tol: float = TOL) -> None:
    """Ranks identical after every epoch; 2 processes equal 1 to ``tol``; α moved."""
    for epoch in range(1, epochs + 1):
        rank0, rank1, single = (_alphas(two, 0, epoch), _alphas(two, 1, epoch),
                                _alphas(one, 0, epoch))
        for a, b, c in zip(rank0, rank1, single):
            assert torch.equal(a, b), f"the processes disagree on α after epoch {epoch}"
            assert torch.allclose(a, c, rtol=0, atol=tol), (epoch, (a - c).abs().max().item())
    moved = max(a.abs().max().item() for a in _alphas(one, 0, epochs))
    assert moved > 100 * tol, "α did not move: the comparison would be vacuous"


def _recorded_pair(options: dict, root: Path, name: str) -> dict[str, Path]:
    """A recorded 2-process run of ``options`` and its single-process twin, run here while
    the two processes work."""
    proc, two = _start_recorded(options, root, f"{name}2")
    one = _run_recorded_here(options, root, f"{name}1")
    finish(proc)
    return {"two": two, "one": one, "run2": root / f"{name}2", "run1": root / f"{name}1"}


@pytest.fixture(scope="module")
def first_order(tmp_path_factory) -> dict[str, Path]:
    return _recorded_pair(TINY, tmp_path_factory.mktemp("dsearch"), "first")


def test_first_order_two_processes_match_one(first_order):
    _assert_match(first_order["two"], first_order["one"], TINY["epochs"])
    two, one = first_order["run2"], first_order["run1"]
    hist2 = json.loads((two / "history.json").read_text())
    hist1 = json.loads((one / "history.json").read_text())
    for rec2, rec1 in zip(hist2, hist1, strict=True):
        assert rec2["genotype"] == rec1["genotype"]
        # metrics are reduced over processes: the global batch's values
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "arch_val_loss"):
            assert rec2[key] == pytest.approx(rec1[key], rel=TOL, abs=TOL), key
    genotype = json.loads((two / "genotype.json").read_text())
    assert genotype["provenance"]["world_size"] == 2
    assert json.loads((one / "genotype.json").read_text())["provenance"]["world_size"] == 1
    assert "world_size: 2" in (two / "config.yaml").read_text()
    assert load_checkpoint(two / "checkpoint.pt")["world_size"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("order", [2, 1])
def test_advrush_and_lipschitz_match_one(tmp_path, order):
    options = dict(TINY, order=order, regularizer="advrush:1,lipschitz:0.5", epochs=1,
                   regularizer_options={"advrush": {"h": 0.5, "start_epoch": 0}})
    pair = _recorded_pair(options, tmp_path, "regularised")
    _assert_match(pair["two"], pair["one"], 1)
    hist2 = json.loads((pair["run2"] / "history.json").read_text())
    hist1 = json.loads((pair["run1"] / "history.json").read_text())
    for key in ("regularizer/advrush/R", "regularizer/lipschitz/term"):
        assert key in hist1[0], (key, sorted(hist1[0]))
    for key in hist1[0]:
        if key.startswith("regularizer/"):
            assert hist2[0][key] == pytest.approx(hist1[0][key], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
@pytest.mark.parametrize(("changes", "tol"), [
    ({"relaxation": "pc-darts", "relaxation_options": {"k": 2}}, TOL),
    # 1/τ = 10 in the last epoch amplifies the rounding (1.2e-5 measured by hand)
    ({"relaxation": "gdas"}, 1e-4),
    # the reductions of two shards round like one batch to ~1e-16 in float64
    ({"precision": "float64"}, 1e-12),
])
def test_relaxations_and_float64_match_one_process(tmp_path, changes, tol):
    pair = _recorded_pair(dict(TINY, **changes), tmp_path, "variant")
    _assert_match(pair["two"], pair["one"], TINY["epochs"], tol)
    assert (json.loads((pair["run2"] / "genotype.json").read_text())["normal"]
            == json.loads((pair["run1"] / "genotype.json").read_text())["normal"])


def test_only_rank0_writes_and_reports(tmp_path):
    out = tmp_path / "run"
    stdout, stderr = finish(launch(_search_args(dict(TINY, epochs=1), out), cwd=tmp_path))
    names = sorted(p.name for p in out.iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]
    assert len(events) == 1, names
    assert sorted(set(names) - set(events) - {".robustnas.lock"}) == [
        "checkpoint.pt", "config.yaml", "genotype.json", "history.csv", "history.json",
        "normal.png", "normal.svg", "reduction.png", "reduction.svg"], names
    assert stdout.count("genotype: ") == 1, stdout
    assert stderr.count("epoch 1/1:") == 1, stderr


def test_global_batch_must_divide_over_processes(tmp_path):
    out = tmp_path / "run"
    _, stderr = finish(launch(_search_args(dict(TINY, batch_size=15), out), cwd=tmp_path),
                        expect=1)
    assert "batch_size 15 is the global batch and must be divisible by the 2 processes" \
        in stderr, stderr
    # one line from each process, no traceback through robustnas (torchrun prints its own
    # report of the failed processes)
    assert 'robustnas/' not in stderr, stderr


@pytest.mark.slow
def test_killed_under_torchrun_resumes_and_matches_one_process(tmp_path):
    options = dict(TINY, max_steps_per_epoch=3, checkpoint_every=1)
    out = tmp_path / "run"
    proc = launch(_search_args(options, out), cwd=tmp_path)
    checkpoint = out / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    for pid in [*_descendants(proc.pid), proc.pid]:  # the launcher and both processes,
        with contextlib.suppress(ProcessLookupError):  # no goodbye
            os.kill(pid, signal.SIGKILL)
    proc.communicate()
    killed_at = load_checkpoint(checkpoint)
    assert (killed_at["epoch"], killed_at["step"]) < (options["epochs"], 0)
    _, stderr = finish(launch(_search_args({}, out, "--resume"), cwd=tmp_path))
    final = load_checkpoint(checkpoint)
    assert (final["epoch"], final["step"]) == (options["epochs"], 0)
    assert final["world_size"] == 2
    single = tmp_path / "single"
    Searcher(SearchConfig(**options, out=str(single)), show_progress=False).run()
    for a, b in zip(_alpha(out), _alpha(single), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=TOL), (a - b).abs().max().item()
    assert json.loads((out / "genotype.json").read_text())["normal"] == \
        json.loads((single / "genotype.json").read_text())["normal"]



@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_process_at_one_step(tmp_path):
    options = dict(TINY, epochs=1, max_steps_per_epoch=40, checkpoint_every=1)
    out = tmp_path / "run"
    proc = launch(_search_args(options, out), cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert stderr.count("robustnas search: stopped by signal") == 1, stderr
    # rank 0 says beforehand that torchrun's own traceback, printed last, is expected
    assert stderr.count("the run stopped cleanly; torchrun now prints its own report") == 1
    stopped = load_checkpoint(out / "checkpoint.pt")
    assert (stopped["epoch"], 0) == (0, 0) and 0 < stopped["step"] < 40
    finish(launch(_search_args({"max_steps_per_epoch": 3}, out, "--resume"), cwd=tmp_path))
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


# Run by each process under torchrun: a search whose rank 0 sends itself SIGTERM after the
# given step (epoch, step), so that both processes stop at that step deterministically.
STOPPER = '''
import os, signal, sys, yaml
from pathlib import Path
from robustnas.search import SearchConfig
from robustnas.search.searcher import Searcher, SearchInterrupted

options, at = yaml.safe_load(Path(sys.argv[1]).read_text()), (int(sys.argv[2]), int(sys.argv[3]))

class Stopping(Searcher):
    def _train_step(self, *batches):
        super()._train_step(*batches)
        if self.dist.rank == 0 and (self.epoch, self.step + 1) == at:
            os.kill(os.getpid(), signal.SIGTERM)

try:
    Stopping(SearchConfig(**options), show_progress=False).run()
except SearchInterrupted:
    sys.exit(130)
'''


@pytest.mark.slow
def test_stopped_two_process_search_resumes_bit_identical_to_an_uninterrupted_one(tmp_path):
    """SIGTERM at (epoch 2, step 2) of 3, then --resume, with 2 processes: final weights,
    α and every logged epoch equal an uninterrupted 2-process run bit for bit (each process
    gets its own running sums and RNG back, not rank 0's)."""
    options = dict(TINY, max_steps_per_epoch=3, warmup_epochs=1)
    script = tmp_path / "stopper.py"
    script.write_text(STOPPER)
    runs = {}
    for name, at in (("whole", (9, 9)), ("stopped", (1, 2))):
        runs[name] = tmp_path / name
        (tmp_path / f"{name}.json").write_text(json.dumps(dict(options, out=str(runs[name]))))
        finish(launch([str(script), str(tmp_path / f"{name}.json"), *map(str, at)],
                      cwd=tmp_path), expect=0 if name == "whole" else 1)
    stopped = load_checkpoint(runs["stopped"] / "checkpoint.pt")
    assert (stopped["epoch"], stopped["step"]) == (1, 2)
    finish(launch(_search_args({}, runs["stopped"], "--resume"), cwd=tmp_path))
    whole = load_checkpoint(runs["whole"] / "checkpoint.pt")
    resumed = load_checkpoint(runs["stopped"] / "checkpoint.pt")
    assert (resumed["epoch"], resumed["step"]) == (options["epochs"], 0)
    a, b = whole["model"]["state_dict"], resumed["model"]["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), (key, (a[key].double() - b[key].double()).abs().max())
    history = [json.loads((runs[n] / "history.json").read_text()) for n in ("whole", "stopped")]
    timing = ("epoch_seconds", "images_per_second")
    for one, two in zip(*history, strict=True):
        assert {k: v for k, v in one.items() if k not in timing} == \
            {k: v for k, v in two.items() if k not in timing}, one["epoch"]


def _alpha(run: Path) -> list[torch.Tensor]:
    state = load_checkpoint(run / "checkpoint.pt")["model"]["state_dict"]
    return [state[k] for k in sorted(state) if k.startswith("alpha")]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in their own sessions)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


EMPTY_SHARD = '''
import sys, torch, torch.distributed as dist
from robustnas.distributed import GlobalBatchNorm2d
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
full = torch.randn(3, 4, 5, 5)
weights = torch.arange(full.numel()).view_as(full).float() / full.numel()
x = (full if rank == 0 else full[:0]).clone().requires_grad_(True)
out = GlobalBatchNorm2d(4, affine=False, track_running_stats=False).train()(x)
(grad,) = torch.autograd.grad((out * weights[:len(x)]).sum(), [x])
ref_x = full.clone().requires_grad_(True)
ref = torch.nn.BatchNorm2d(4, affine=False, track_running_stats=False).train()(ref_x)
(ref_grad,) = torch.autograd.grad((ref * weights).sum(), [ref_x])
if rank == 0:
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5)
print(f"rank {rank} done", flush=True)
dist.destroy_process_group()
'''


def test_global_batch_norm_with_an_empty_shard_joins_the_backward(tmp_path):
    """A process whose shard is empty (a short last batch) still takes part in the backward
    collective, so neither process waits forever; rank 0's values are the full batch's."""
    script = tmp_path / "empty_shard.py"
    script.write_text(EMPTY_SHARD)
    stdout, _ = finish(launch([str(script)], cwd=tmp_path))
    assert "rank 0 done" in stdout and "rank 1 done" in stdout
