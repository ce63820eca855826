"""--threads / OMP_NUM_THREADS on search, retrain and evaluate (issue 12, item 8)."""

from __future__ import annotations

import pytest
import torch

from robustnas.cli import build_parser
from robustnas.errors import UsageError
from robustnas.runtime import DEFAULT_MAX_THREADS, available_cores, default_threads, set_threads


def test_default_is_omp_num_threads_else_a_few_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == min(available_cores(), DEFAULT_MAX_THREADS)
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert default_threads() == min(available_cores(), DEFAULT_MAX_THREADS)


def test_set_threads_applies_and_rejects_negative(monkeypatch):
    assert set_threads(2) == 2
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert set_threads(0) == 1 and torch.get_num_threads() == 1
    assert set_threads(None) == 1
    with pytest.raises(UsageError, match="threads must be a positive number"):
        set_threads(-1)


@pytest.mark.parametrize("command", ["search", "retrain", "evaluate", "study"])
def test_every_long_command_takes_threads(command):
    extra = {"retrain": ["DARTS_V2"], "evaluate": ["x.pt"], "study": ["s.yaml"]}.get(command, [])
    args = build_parser().parse_args([command, *extra, "--threads", "2"])
    assert args.threads == 2
    if command == "search":
        from robustnas.cli.search import build_overrides
        assert build_overrides(args)["threads"] == 2
    if command == "retrain":
        from robustnas.cli.retrain import build_overrides
        assert build_overrides(args)["threads"] == 2


def test_search_and_retrain_use_the_configured_threads(tmp_path, monkeypatch):
    # The commands call set_threads with their config's value (recorded here rather than
    # applied: two threads on a busy two-core machine would make this test crawl).
    import robustnas.search.searcher as searcher
    import robustnas.train.trainer as trainer
    from robustnas.search.config import SearchConfig
    from robustnas.train import RetrainConfig

    calls = []
    for module in (searcher, trainer):
        monkeypatch.setattr(module, "set_threads", lambda n: calls.append(n) or 1)
    config = SearchConfig(dataset="synthetic", dataset_options={"n_train": 64, "n_test": 16},
                          C=4, layers=3, batch_size=16, epochs=1, device="cpu",
                          max_steps_per_epoch=1, threads=3, out=str(tmp_path / "s"))
    searcher.Searcher(config, show_progress=False).log.close()
    t = trainer.Trainer(RetrainConfig(genotype="DARTS_V2", dataset="digits", C=4, layers=3,
                                      batch_size=16, epochs=1, eval_every=0, best_by="clean",
                                      cutout=2, device="cpu", threads=5,
                                      out=str(tmp_path / "r")), show_progress=False)
    t.log.close()
    assert calls == [3, 5]
