"""Smoke runs and shipped tiny configs (issue 20 item 9): ``max_steps_per_epoch`` also caps
the end-of-epoch validation, and the tiny regulariser configs move α as the quickstart does
(their old ``arch_lr 0.003`` left a uniform genotype on the digits)."""

from __future__ import annotations

from pathlib import Path

from robustnas.config import read_yaml
from robustnas.search.config import SearchConfig
from robustnas.search.searcher import Searcher

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


class _Counting:
    """A loader proxy counting the batches taken from it."""

    def __init__(self, loader) -> None:
        self.loader, self.batches = loader, 0

    def epoch(self, *args, **kwargs):
        for batch in self.loader.epoch(*args, **kwargs):
            self.batches += 1
            yield batch


def test_max_steps_per_epoch_caps_the_validation_batches(tmp_path):
    config = SearchConfig(dataset="digits", C=4, layers=3, steps=2, batch_size=16, epochs=1,
                          max_steps_per_epoch=2, device="cpu", seed=0, threads=1,
                          draw_every=0, out=str(tmp_path / "run"))
    searcher = Searcher(config, show_progress=False)
    searcher.data.val_eval = counting = _Counting(searcher.data.val_eval)
    result = searcher.run()
    assert counting.batches == 2  # not the 57 batches of the whole validation half
    assert result.history[0]["val_images"] == 32


def test_tiny_regularizer_configs_move_alpha_like_the_quickstart():
    quick = read_yaml(CONFIGS / "quickstart.yaml")
    for name in ("advrush_tiny.yaml", "lipschitz_tiny.yaml"):
        tiny = read_yaml(CONFIGS / name)
        for key in ("arch_lr", "warmup_epochs", "batch_size", "w_lr"):
            assert tiny.get(key) == quick.get(key), (name, key, tiny.get(key), quick.get(key))
