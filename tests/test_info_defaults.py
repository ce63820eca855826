"""``robustnas info`` sizes a genotype for the dataset of its provenance (issue 12, item 11)."""

from __future__ import annotations

import json

from robustnas.cli import main
from robustnas.space.darts.catalogue import load_genotype
from robustnas.space.darts.genotype import make_genotype, save_genotype
from robustnas.space.info_defaults import DATASET_SIZES, default_sizes


def _with_provenance(provenance):
    g = load_genotype("DARTS_V2")
    return make_genotype(g.normal, g.reduce, g.normal_concat, g.reduce_concat,
                         provenance=provenance)


def _digits_genotype(tmp_path):
    geno = _with_provenance({"dataset": "digits", "supernet": {"C": 8, "layers": 5}})
    return str(save_genotype(geno, tmp_path / "genotype.json"))


def test_provenance_dataset_sets_the_sizes_and_says_so(tmp_path, capsys):
    path = _digits_genotype(tmp_path)
    assert main(["info", path, "--json"]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    digits = DATASET_SIZES["digits"]
    assert (info["in_channels"], info["image_size"], info["classes"]) == (1, 8, 10)
    assert (info["channels"], info["layers"]) == (digits["channels"], digits["layers"])
    assert "digits" in captured.err and "provenance" in captured.err


def test_explicit_options_win(tmp_path, capsys):
    path = _digits_genotype(tmp_path)
    assert main(["info", path, "--json", "--channels", "16", "--image-size", "16"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["channels"], info["image_size"], info["in_channels"]) == (16, 16, 1)


def test_named_genotypes_and_unknown_datasets_use_cifar_sizes(tmp_path):
    sizes, note = default_sizes("DARTS_V2", {})
    assert sizes == {"channels": 36, "layers": 20, "classes": 10, "in_channels": 3,
                     "image_size": 32}
    geno = _with_provenance({"dataset": "synthetic",
                             "supernet": {"num_classes": 4, "in_channels": 1}})
    path = str(save_genotype(geno, tmp_path / "g.json"))
    sizes, note = default_sizes(path, {})
    assert sizes["classes"] == 4 and sizes["in_channels"] == 1 and sizes["image_size"] == 32
    assert "synthetic" in note
