"""Guard-rail hints (issue 12, item 10): a checkpoint given as a genotype names the right
command; an unknown --set key suggests the nearest known one."""

from __future__ import annotations

import pytest
import torch

from robustnas.cli import main
from robustnas.config import resolve_config
from robustnas.errors import UsageError
from robustnas.search.config import SearchConfig
from robustnas.search.state import save_search_state
from robustnas.train import RetrainConfig
from robustnas.train.state import save_train_state


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


def test_search_checkpoint_as_genotype_points_to_derive(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    save_search_state(path, {"epoch": 1})
    err = _run(["retrain", str(path), "--out", str(tmp_path / "r")], capsys)
    assert "search checkpoint" in err and f"robustnas derive {path}" in err


def test_trained_checkpoint_and_other_pickles_are_named(tmp_path, capsys):
    path = tmp_path / "last.pt"
    save_train_state(path, {"epoch": 1})
    err = _run(["retrain", str(path), "--out", str(tmp_path / "r")], capsys)
    assert "trained network's checkpoint" in err and "robustnas evaluate" in err
    other = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, other)
    err = _run(["retrain", str(other), "--out", str(tmp_path / "r")], capsys)
    assert "PyTorch checkpoint, not a genotype" in err


@pytest.mark.parametrize(("cls", "key", "suggestion"), [
    (SearchConfig, "arch_rl", "arch_lr"), (SearchConfig, "epoch", "epochs"),
    (RetrainConfig, "eval_nn", "eval_n"), (RetrainConfig, "best-by", None)])
def test_unknown_key_suggests_the_nearest(cls, key, suggestion):
    if suggestion is None:  # a dash spelling of a real key is simply accepted
        resolve_config(cls, None, {key: "clean"})
        return
    with pytest.raises(UsageError, match=f"did you mean '{suggestion}'"):
        resolve_config(cls, None, {key: 1})


def test_unknown_key_without_a_near_one_lists_the_known(capsys):
    with pytest.raises(UsageError) as exc:
        resolve_config(SearchConfig, None, {"zzzz": 1})
    assert "did you mean" not in str(exc.value) and "(known: C," in str(exc.value)
