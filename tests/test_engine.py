"""The engine both tasks share (robustnas.engine): a signal at step k, a callback that stops
the run, resume at step k (bit-identical to an uninterrupted run), and the callbacks' hooks —
the same tests for search and for retraining."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from robustnas.engine import Callback, on_step
from robustnas.io import load_checkpoint
from robustnas.search import SearchConfig, run_search
from robustnas.search.searcher import SearchInterrupted
from robustnas.train import RetrainConfig, retrain
from robustnas.train.trainer import TrainingInterrupted


def _search(out: Path, callbacks=(), resume: bool = False):
    config = SearchConfig(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32},
                          C=4, layers=3, batch_size=16, epochs=2, warmup_epochs=1,
                          device="cpu", seed=3, out=str(out), draw_every=0, threads=1)
    if resume:
        return run_search(overrides={"out": str(out)}, resume=True, show_progress=False,
                          callbacks=callbacks)
    return run_search(config, show_progress=False, callbacks=callbacks)


def _retrain(out: Path, callbacks=(), resume: bool = False):
    config = RetrainConfig(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16,
                           epochs=2, max_steps_per_epoch=3, eval_n=32, eval_steps=2,
                           eval_batch_size=16, steps=2, device="cpu", seed=5, out=str(out),
                           adversarial="pgd", cutout=2, threads=1)
    if resume:
        return retrain(overrides={"out": str(out)}, resume=True, show_progress=False,
                       callbacks=callbacks)
    return retrain(config, show_progress=False, callbacks=callbacks)


TASKS = {
    "search": (_search, SearchInterrupted, "checkpoint.pt"),
    "retrain": (_retrain, TrainingInterrupted, "last.pt"),
}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]["state_dict"]


def _same(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module", params=sorted(TASKS))
def task(request, tmp_path_factory):
    """(name, run function, interruption error, checkpoint name, uninterrupted run dir)."""
    run, error, checkpoint = TASKS[request.param]
    torch.set_num_threads(1)
    reference = tmp_path_factory.mktemp(request.param) / "ref"
    run(reference)
    return request.param, run, error, checkpoint, reference


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_run_start(self, task) -> None:
        self.events.append(("start", task.epoch, task.step))

    def on_step_end(self, task) -> None:
        self.events.append(("step", task.epoch, task.step))

    def on_epoch_end(self, task, record) -> None:
        self.events.append(("epoch", record["epoch"]))

    def on_run_end(self, task) -> None:
        self.events.append(("end", task.epoch))


def test_signal_at_step_k_checkpoints_and_resumes_bit_identical(task, tmp_path):
    name, run, error, checkpoint, reference = task
    out = tmp_path / "run"

    def interrupt(t) -> None:
        if (t.epoch, t.step) == (1, 1):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(error, match=r"by signal 2 in epoch 2, step 1; checkpoint saved"):
        run(out, [on_step(interrupt)])
    state = load_checkpoint(out / checkpoint)
    assert (state["epoch"], state["step"]) == (1, 1)  # the step was finished, then saved
    recorder = Recorder()
    run(out, [recorder], resume=True)
    assert recorder.events[0] == ("start", 1, 1)  # resumed at step k of epoch 2
    _same(reference / checkpoint, out / checkpoint)


def test_a_callback_stops_the_run_resumably(task, tmp_path):
    name, run, error, checkpoint, reference = task
    out = tmp_path / "run"

    def stop(t) -> None:
        if (t.epoch, t.step) == (0, 2):
            t.request_stop("enough")

    with pytest.raises(error, match=r"stopped by a callback \(enough\) in epoch 1, step 2"):
        run(out, [on_step(stop)])
    state = load_checkpoint(out / checkpoint)
    assert (state["epoch"], state["step"]) == (0, 2)
    run(out, resume=True)
    _same(reference / checkpoint, out / checkpoint)


def test_hooks_are_called_in_order(task, tmp_path):
    name, run, error, checkpoint, reference = task
    recorder = Recorder()
    run(tmp_path / "run", [recorder])
    events = recorder.events
    assert events[0] == ("start", 0, 0) and events[-1] == ("end", 2)
    assert [e for e in events if e[0] == "epoch"] == [("epoch", 1), ("epoch", 2)]
    steps = [e for e in events if e[0] == "step"]
    assert steps[0] == ("step", 0, 1)  # after the step: it is counted
    _same(reference / checkpoint, tmp_path / "run" / checkpoint)  # callbacks change nothing


def test_an_exception_in_a_callback_ends_the_run_at_once(task, tmp_path):
    name, run, error, checkpoint, reference = task

    class Boom(Exception):
        pass

    def boom(t) -> None:
        raise Boom

    with pytest.raises(Boom):
        run(tmp_path / "run", [on_step(boom)])


class AddAndFinish(Callback):
    """Adds a key to every epoch's record and finishes the run after the first epoch."""

    def on_epoch_record(self, task, record) -> None:
        record["custom/epoch_seen"] = task.epoch + 1
        task.finish_early("good enough")


def test_a_callback_extends_the_record_and_finishes_early(task, tmp_path):
    name, run, error, checkpoint, reference = task
    result = run(tmp_path / "run", [AddAndFinish()])
    assert len(result.history) == 1 and result.history[0]["custom/epoch_seen"] == 1
    state = load_checkpoint(tmp_path / "run" / checkpoint)
    assert state["epoch"] == 1 and state["history"][0]["custom/epoch_seen"] == 1
    if name == "search":  # a finished search derives and writes its genotype
        assert result.stopped_early == "good enough" and result.genotype_path.exists()
    else:
        assert result.epochs_run == 1 and result.summary_path.exists()
