"""One resume policy (robustnas/resume.py): settings declared fixed or changeable on their
fields, one rule for a changed learning rate, one form of --resume [PATH] (issue 17)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.options import CHANGEABLE, FIXED, option, undeclared_resume_class
from robustnas.resume import apply_learning_rate, merge_resumed, resume_target
from robustnas.search.api import run_search
from robustnas.search.config import SearchConfig
from robustnas.search.resume import FIXED_KEYS, resume_search_dir
from robustnas.train.config import RESUMABLE_KEYS, RetrainConfig


# -- settings declared once ------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SearchConfig, RetrainConfig])
def test_every_setting_of_a_resumable_command_declares_its_resume_class(cls):
    assert undeclared_resume_class(cls) == []


def test_the_declared_classes_keep_what_could_and_could_not_change_before():
    before = {"dataset", "dataset_options", "train_portion", "augment", "batch_size", "seed",
              "C", "layers", "steps", "order", "regularizer", "regularizer_options", "epochs",
              "warmup_epochs"}
    # the space too now: a checkpoint holds one space's supernet, and its relaxation; the
    # weight step's objective defines what the weights were trained for
    assert FIXED_KEYS == before | {"space", "relaxation", "relaxation_options", "w_objective",
                                   "w_objective_options", "alpha_objective", "precision"}
    before = {"device", "out", "data_root", "download", "eval_every", "eval_n", "eval_steps",
              "eval_eps", "eval_step_size", "eval_batch_size", "checkpoint_every", "amp",
              "channels_last", "threads", "lr", "grad_clip", "skip_nonfinite"}
    # execution settings as in a search
    assert RESUMABLE_KEYS == before | {"sync_bn", "max_steps_per_epoch"}


@dataclass
class _Settings:
    seed: int = option(0, resume=FIXED)
    lr: float = option(0.1, resume=CHANGEABLE)
    eps: float = option(0.1, resume=CHANGEABLE)
    step: float | None = option(None, resume=CHANGEABLE, derived_from=("eps",))
    out: str = option("runs/x", resume=CHANGEABLE)

    def __post_init__(self) -> None:
        if self.step is None:
            self.step = self.eps / 4


def test_merge_keeps_saved_settings_refuses_fixed_ones_and_rederives():
    saved = {"seed": 3, "lr": 0.1, "eps": 0.1, "step": 0.03, "out": "a"}
    config, changes = merge_resumed(_Settings, saved, {"lr": 0.05})
    assert (config.seed, config.lr, config.step) == (3, 0.05, 0.03)
    assert changes == [("lr", 0.1, 0.05)]
    # a new ε computes its step anew; the same ε given again keeps the saved step
    config, changes = merge_resumed(_Settings, saved, {"eps": 0.2})
    assert config.step == pytest.approx(0.05) and [c[0] for c in changes] == ["eps", "step"]
    assert merge_resumed(_Settings, saved, {"eps": 0.1})[0].step == 0.03
    with pytest.raises(UsageError, match="cannot change seed when resuming ck.pt"):
        merge_resumed(_Settings, saved, {"seed": 4}, source="ck.pt")
    # no checkpoint yet (killed before the first one): nothing to contradict
    assert merge_resumed(_Settings, saved, {"seed": 4}, checkpoint=False)[0].seed == 4
    assert merge_resumed(_Settings, saved, {"out": "b"})[1] == []  # out is not a change


# -- one rule for a changed learning rate ----------------------------------------------------
def _run(sched_factory, lr: float, epochs: int) -> tuple[torch.optim.Optimizer, object]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    sched = sched_factory(opt)
    for _ in range(epochs):
        opt.step()
        sched.step()
    return opt, sched


def _follows(opt, sched, fresh_opt, fresh, epochs: int) -> None:
    for _ in range(epochs):
        assert opt.param_groups[0]["lr"] == pytest.approx(fresh_opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
        for o, s in ((opt, sched), (fresh_opt, fresh)):
            o.step()
            s.step()


def test_cosine_keeps_its_position_when_its_base_and_floor_move():
    def cosine(floor):
        return lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=floor)
    opt, sched = _run(cosine(0.001), 0.1, 3)
    fresh_opt, fresh = _run(cosine(0.002), 0.04, 3)
    assert apply_learning_rate(opt, sched, 0.04, 0.002)
    assert sched.base_lrs == [0.04] and sched.eta_min == 0.002
    assert opt.param_groups[0]["initial_lr"] == 0.04
    _follows(opt, sched, fresh_opt, fresh, 6)


def test_step_schedule_keeps_its_decays_when_its_base_moves():
    def step(o):
        return torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 4], gamma=0.1)
    opt, sched = _run(step, 0.1, 3)  # after the first decay: 0.01
    fresh_opt, fresh = _run(step, 0.05, 3)
    assert apply_learning_rate(opt, sched, 0.05)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)  # not a cosine value
    _follows(opt, sched, fresh_opt, fresh, 4)
    with pytest.raises(ValueError, match="no floor"):
        apply_learning_rate(opt, sched, 0.05, 0.001)


def test_a_flat_schedule_takes_its_position_from_the_closed_form():
    def cosine(floor):
        return lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=floor)
    opt, sched = _run(cosine(0.01), 0.01, 2)  # base == floor: lr is 0.01 throughout
    assert apply_learning_rate(opt, sched, 0.1, 0.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi / 2)) / 2)


def test_unchanged_settings_leave_the_loaded_state_as_it_is():
    opt, sched = _run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
        o, T_max=10, eta_min=0.001), 0.1, 3)
    before = (opt.state_dict()["param_groups"], sched.state_dict())
    assert not apply_learning_rate(opt, sched, 0.1, 0.001)
    assert not apply_learning_rate(opt, sched, 0.1)
    assert (opt.state_dict()["param_groups"], sched.state_dict()) == before


# -- one form of --resume [PATH] -------------------------------------------------------------
def test_resume_target_names_a_checkpoint_and_where_to_write(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    bare = resume_target(True, out=None, default_out=run, checkpoint_name="last.pt")
    assert (bare.checkpoint, bare.out, bare.from_directory) == (run / "last.pt", run, True)
    folder = resume_target(str(run), out=None, default_out="x", checkpoint_name="last.pt")
    assert (folder.checkpoint, folder.out, folder.from_directory) == (run / "last.pt", run, True)
    file = resume_target(run / "best.pt", out=tmp_path / "b", default_out="x",
                         checkpoint_name="last.pt")
    assert (file.checkpoint, file.from_directory, file.elsewhere) == (run / "best.pt", False,
                                                                      True)


def test_search_resume_path_names_its_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    (run / "other.pt").write_bytes(b"")
    assert resume_search_dir(True, {"out": str(run)}) == run
    assert resume_search_dir(True, {}) == Path(SearchConfig().out)
    assert resume_search_dir(run, {}) == run
    assert resume_search_dir(str(run / "checkpoint.pt"), {"out": str(run)}) == run
    with pytest.raises(UsageError, match="give that directory"):
        resume_search_dir(run / "other.pt", {})
    with pytest.raises(UsageError, match="does not exist"):
        resume_search_dir(run / "missing.pt", {})
    with pytest.raises(UsageError, match="give one of them"):
        resume_search_dir(run, {"out": str(tmp_path / "elsewhere")})


def test_search_resume_takes_a_path_like_retrain(tmp_path, capsys):
    out = tmp_path / "run"
    run_search(SearchConfig(dataset="synthetic", dataset_options={"n_train": 64, "n_test": 16},
                            C=4, layers=3, batch_size=16, epochs=1, device="cpu", seed=3,
                            draw_every=0, max_steps_per_epoch=1, out=str(out)),
               show_progress=False)
    capsys.readouterr()
    assert main(["search", "--resume", str(out), "--quiet", "--set", "w_lr=0.01"]) == 0
    assert "resume: changing w_lr 0.025 -> 0.01" in capsys.readouterr().err
    result = run_search(resume=out / "checkpoint.pt", show_progress=False)  # the API too
    assert result.run_dir == out
    assert main(["search", "--resume", str(out), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "give one of them" in capsys.readouterr().err
