"""Retraining builds a space's standard network unless the user sets its sizes."""

from robustnas.config import resolve_config
from robustnas.resume import explicit_settings
from robustnas.train.api import _space_network_sizes
from robustnas.train.config import RetrainConfig

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def _sizes(overrides, config_file=None):
    config = resolve_config(RetrainConfig, config_file, overrides)
    config = _space_network_sizes(config, explicit_settings(config_file, overrides))
    return config.C, config.layers


def test_nb201_genotype_gets_nb201_sizes(capsys):
    assert _sizes({"genotype": CELL}) == (16, 15)
    assert "standard network" in capsys.readouterr().err


def test_explicit_sizes_win(tmp_path):
    assert _sizes({"genotype": CELL, "C": 8}) == (8, 20)
    assert _sizes({"genotype": CELL, "layers": 3}) == (36, 3)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("C: 4\n")
    assert _sizes({"genotype": CELL}, cfg) == (4, 20)


def test_darts_and_handcrafted_keep_the_retraining_defaults():
    assert _sizes({"genotype": "DARTS_V2"}) == (36, 20)
    assert _sizes({"genotype": "resnet18"}) == (36, 20)
