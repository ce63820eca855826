"""A stop signal that arrives during the end-of-epoch work (validation, Hessian, pictures) of
a search or a retraining is honoured at that epoch's boundary, also after the last epoch: the
Python API raises (as the CLI exits 130) and ``--resume`` finishes the run (issue 20 item 1).

The signal is sent from inside the validation of the last epoch by a subclass overriding the
public ``evaluate_val``/``evaluate`` methods, so it lands there deterministically.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from robustnas.io import load_checkpoint
from robustnas.search.api import run_search
from robustnas.search.config import SearchConfig
from robustnas.search.searcher import Searcher, SearchInterrupted
from robustnas.train import RetrainConfig, TrainingInterrupted
from robustnas.train.trainer import Trainer


def _search_config(out: Path) -> SearchConfig:
    return SearchConfig(dataset="digits", C=4, layers=3, steps=2, batch_size=16, epochs=1,
                        max_steps_per_epoch=2, device="cpu", seed=3, threads=1,
                        draw_every=0, out=str(out))


class _SignalInLastValidation(Searcher):
    """Sends itself SIGTERM while validating after the last epoch's steps."""

    def evaluate_val(self) -> tuple[float, float]:
        if self.epoch + 1 == self.config.epochs:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().evaluate_val()


def _alphas(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoint.pt")["model"]["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("alpha")}


def test_sigterm_during_the_last_validation_stops_the_search(tmp_path):
    config = _search_config(tmp_path / "run")
    with pytest.raises(SearchInterrupted, match="after epoch 1.*--resume"):
        _SignalInLastValidation(config, show_progress=False).run()
    stopped = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert (stopped["epoch"], stopped["step"]) == (1, 0)  # the epoch's end was checkpointed
    assert not (tmp_path / "run" / "genotype.json").exists()
    # the default handler is back: a second signal would not be swallowed either
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    alphas = _alphas(tmp_path / "run")
    # --resume has no step left: it derives and writes the genotype of the saved α
    result = run_search(config, resume=True, show_progress=False)
    assert result.epochs_run == 1 and result.genotype_path.exists()
    for name, value in _alphas(tmp_path / "run").items():
        assert torch.equal(value, alphas[name]), name


class _SignalInLastEvaluation(Trainer):
    """Sends itself SIGTERM while evaluating after the last epoch's steps."""

    def evaluate(self) -> dict:
        if self.epoch + 1 == self.config.epochs:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().evaluate()


def test_sigterm_during_the_last_evaluation_stops_the_retraining(tmp_path):
    config = RetrainConfig(genotype="DARTS_V2", dataset="digits", C=4, layers=3,
                           batch_size=16, epochs=1, max_steps_per_epoch=2, eval_n=16,
                           eval_steps=1, eval_batch_size=16, steps=1, device="cpu", seed=5,
                           cutout=2, threads=1, out=str(tmp_path / "run"))
    with pytest.raises(TrainingInterrupted, match="after epoch 1.*--resume"):
        _SignalInLastEvaluation(config, show_progress=False).run()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
