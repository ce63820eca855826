"""Genotype JSON: round trip, validation, named genotypes."""

from __future__ import annotations

import json

import pytest

from robustnas.errors import GenotypeError
from robustnas.space.darts.catalogue import GENOTYPES, load_genotype
from robustnas.space.darts.genotype import genotype_from_dict, make_genotype, save_genotype


def test_round_trip_keeps_cells_and_provenance(tmp_path):
    geno = make_genotype(GENOTYPES.get("ADVRUSH").normal, GENOTYPES.get("ADVRUSH").reduce,
                         provenance={"dataset": "digits", "seed": 3})
    path = save_genotype(geno, tmp_path / "g.json")
    data = json.loads(path.read_text())
    assert data["format"] == "robustnas-genotype" and data["version"] == 1
    loaded = load_genotype(path)
    assert loaded == geno
    assert loaded.provenance == {"dataset": "digits", "seed": 3}


def test_named_genotypes_load_by_name_case_insensitively():
    assert load_genotype("darts_v2") == GENOTYPES.get("DARTS_V2")
    assert set(GENOTYPES.names()) == {"DARTS_V1", "DARTS_V2", "PDARTS", "PC_DARTS", "ADVRUSH",
                                      "RACL"}


def _base() -> dict:
    return GENOTYPES.get("DARTS_V2").to_dict()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["normal"].__setitem__(0, ["conv_7x7", 0]), "unknown operation 'conv_7x7'"),
    (lambda d: d["normal"].__setitem__(0, ["none", 0]), "unknown operation 'none'"),
    (lambda d: d["normal"].__setitem__(2, ["sep_conv_3x3", 3]), "input 3 out of range"),
    (lambda d: d["reduce"].pop(), "edges"),
    (lambda d: d.pop("reduce"), "missing field 'reduce'"),
    (lambda d: d.__setitem__("version", 99), "unsupported genotype version"),
    (lambda d: d["normal"].__setitem__(0, ["sep_conv_3x3", "a"]), "input index"),
    (lambda d: d.__setitem__("normal_concat", [2, 2, 3]), "distinct"),
])
def test_invalid_genotypes_are_rejected_with_a_clear_message(mutate, message):
    data = _base()
    mutate(data)
    with pytest.raises(GenotypeError, match=message):
        genotype_from_dict(data)


def test_malformed_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_genotype(path)


def test_missing_file_names_the_choices():
    with pytest.raises(GenotypeError, match="neither a file, a named genotype"):
        load_genotype("no_such_genotype.json")


@pytest.mark.parametrize("name, suggestion", [("DARTS_V3", "DARTS_V2"), ("resnet19", "resnet18"),
                                              ("pc-darts", "PC_DARTS"), ("xyzzy", None)])
def test_unknown_genotype_lists_hand_crafted_names_and_the_closest(name, suggestion):
    with pytest.raises(GenotypeError) as info:
        load_genotype(name)
    message = str(info.value)
    assert "ADVRUSH" in message and "resnet18" in message and "wrn-<depth>-<widen>" in message
    if suggestion:
        assert message.endswith(f"did you mean {suggestion}?")
    else:
        assert "did you mean" not in message
