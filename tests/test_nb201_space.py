"""NAS-Bench-201 space: ops, strings/JSON, sampler, parameter counts against the reference
layout, forward shapes and the cell picture."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import torch

from robustnas.errors import GenotypeError, UsageError
from robustnas.space.complexity import count_parameters
from robustnas.space.nb201 import EDGES, NB201_OPS, NB201Genotype, NB201Network
from robustnas.space.nb201.genotype import (
    load_nb201_genotype,
    nb201_genotype_from_dict,
)
from robustnas.space.nb201.info import nb201_info
from robustnas.space.nb201.ops import make_nb201_op
from robustnas.space.nb201.picture import draw_nb201_cell, nb201_cell_image
from robustnas.space.nb201.sampler import NUM_CELLS, all_cells, cell_from_code
from robustnas.space.sampling import sample_genotypes
from robustnas.space.spaces import get_space

EXAMPLE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
           "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def cell_string(ops) -> str:
    return NB201Genotype(tuple(ops)).to_string()


def reference_params(ops, classes: int, C: int = 16, N: int = 5, in_ch: int = 3) -> int:
    """NAS-Bench-201 ``TinyNetwork`` size from the layer formulas (independent of our modules).

    stem: 3×3 conv in→C (no bias) + BN(2C). Cell at width c: nor_conv_k = k²c² + 2c (conv
    without bias + affine BN); none/skip/avg_pool: 0. Residual block c→2c (stride 2):
    ReLUConvBN 3×3 c→2c (9·c·2c + 4c) + ReLUConvBN 3×3 2c→2c (9·4c² + 4c) + avg-pool + 1×1
    conv c→2c without BN (2c²). Head: BN(4C) affine + linear 4C→classes with bias.
    """
    per_op = {"none": 0, "skip_connect": 0, "avg_pool_3x3": 0,
              "nor_conv_1x1": lambda c: c * c + 2 * c, "nor_conv_3x3": lambda c: 9 * c * c + 2 * c}

    def cell(c: int) -> int:
        return sum(per_op[o](c) if callable(per_op[o]) else 0 for o in ops)

    def block(c: int) -> int:
        return 9 * c * 2 * c + 4 * c + 9 * 4 * c * c + 4 * c + 2 * c * c

    total = 9 * in_ch * C + 2 * C
    total += N * cell(C) + block(C) + N * cell(2 * C) + block(2 * C) + N * cell(4 * C)
    return total + 2 * 4 * C + 4 * C * classes + classes


ALL = {op: [op] * 6 for op in NB201_OPS}
SPREAD = [ALL["none"], ALL["skip_connect"], ALL["nor_conv_3x3"], ALL["nor_conv_1x1"],
          ALL["avg_pool_3x3"], list(NB201Genotype.from_string(EXAMPLE).ops),
          ["nor_conv_1x1", "none", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none"],
          ["none", "nor_conv_3x3", "none", "nor_conv_1x1", "nor_conv_3x3", "nor_conv_3x3"]]


def test_known_reference_sizes():
    """The extremes NAS-Bench-201 reports for CIFAR-10: 0.073306 M and 1.531546 M."""
    assert reference_params(ALL["none"], 10) == 73306
    assert reference_params(ALL["nor_conv_3x3"], 10) == 1531546


@pytest.mark.parametrize("classes", [10, 100, 120])
@pytest.mark.parametrize("ops", SPREAD, ids=lambda ops: "-".join(o[:6] for o in ops))
def test_parameter_counts_match_reference(ops, classes):
    net = NB201Network(NB201Genotype(tuple(ops)), num_classes=classes)
    assert count_parameters(net) == reference_params(ops, classes)


def test_parameter_counts_for_random_cells_and_other_widths():
    for geno in sample_genotypes(6, 1, space="nb201"):
        net = NB201Network(geno, C=8, N=2, num_classes=7, in_channels=1)
        assert count_parameters(net) == reference_params(geno.ops, 7, C=8, N=2, in_ch=1)


def test_info_reports_params_and_macs():
    small_net = dict(channels=4, cells_per_stage=1, image_size=8)
    info = nb201_info(EXAMPLE, **small_net)
    ops = NB201Genotype.from_string(EXAMPLE).ops
    assert info["params"] == reference_params(ops, 10, C=4, N=1)
    small = nb201_info(cell_string(ALL["none"]), **small_net)
    big = nb201_info(cell_string(ALL["nor_conv_3x3"]), **small_net)
    assert small["macs"] < info["macs"] < big["macs"]
    with pytest.raises(UsageError, match="--classes"):
        nb201_info(EXAMPLE, classes=0)


def test_forward_shapes_and_sum_of_all_edges():
    torch.manual_seed(0)
    net = NB201Network(NB201Genotype.from_string(EXAMPLE), C=4, N=1, num_classes=10,
                       in_channels=1, mean=(0.5,), std=(0.25,))
    assert net(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    # A cell of skips: node1 = x, node2 = x + x, node3 = x + x + 2x = 4x.
    skip = NB201Network(NB201Genotype(tuple(ALL["skip_connect"])), C=4, N=1).cells[0]
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(skip(x), 4 * x)
    # All none: the cell outputs zeros of the input's shape.
    none = NB201Network(NB201Genotype(tuple(ALL["none"])), C=4, N=1).cells[0]
    assert torch.equal(none(x), torch.zeros_like(x))


@pytest.mark.parametrize("name", NB201_OPS)
def test_ops_keep_shape(name):
    op = make_nb201_op(name, 6)
    assert op(torch.randn(2, 6, 7, 7)).shape == (2, 6, 7, 7)


def test_nor_conv_is_relu_conv_bn_without_bias():
    op = make_nb201_op("nor_conv_3x3", 4, affine=False, track_running_stats=False)
    relu, conv, bn = op
    assert isinstance(relu, torch.nn.ReLU) and conv.bias is None and conv.kernel_size == (3, 3)
    assert bn.weight is None and bn.running_mean is None


def test_string_round_trip_and_edge_order():
    geno = NB201Genotype.from_string(EXAMPLE)
    assert geno.to_string() == EXAMPLE
    assert EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert geno.edges()[2] == ("avg_pool_3x3", 1, 2)
    assert geno.count("nor_conv_3x3") == 3


def test_every_cell_round_trips_and_codes_are_a_bijection():
    seen = set()
    for code, geno in enumerate(all_cells()):
        assert geno.code() == code
        text = geno.to_string()
        assert NB201Genotype.from_string(text) == geno
        seen.add(text)
    assert len(seen) == NUM_CELLS == 15625
    assert cell_from_code(12345).code() == 12345
    with pytest.raises(GenotypeError, match="out of range"):
        cell_from_code(NUM_CELLS)


def test_json_round_trip(tmp_path):
    geno = NB201Genotype.from_string(EXAMPLE, provenance={"seed": 3, "dataset": "digits"})
    path = get_space("nb201").save(geno, tmp_path / "cell.json")
    back = load_nb201_genotype(path)
    assert back == geno and dict(back.provenance) == {"seed": 3, "dataset": "digits"}
    assert json.loads(path.read_text())["arch"] == EXAMPLE
    assert nb201_genotype_from_dict(geno.to_dict()).to_dict() == geno.to_dict()
    assert load_nb201_genotype(EXAMPLE) == geno


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 nodes"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'"),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 edge"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2", "must look like"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "not 'op~source'"),
    ("|none~00|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
    ("", "3 nodes"),
])
def test_bad_strings_are_one_line_errors(text, message):
    with pytest.raises(GenotypeError, match=message):
        NB201Genotype.from_string(text)


@pytest.mark.parametrize("data, message", [
    ({"format": "robustnas-genotype", "version": 1, "arch": EXAMPLE}, "not a robustnas NAS"),
    ({"format": "robustnas-nb201-genotype", "version": 2, "arch": EXAMPLE}, "version 2"),
    ({"format": "robustnas-nb201-genotype", "version": 1}, "missing field 'arch'"),
    ({"format": "robustnas-nb201-genotype", "version": 1, "arch": EXAMPLE, "x": 1}, "unknown"),
    ({"format": "robustnas-nb201-genotype", "version": 1, "arch": 5}, "expected a string"),
    ([], "expected a JSON object"),
])
def test_bad_json_is_rejected(data, message):
    with pytest.raises(GenotypeError, match=message):
        nb201_genotype_from_dict(data)


def test_load_errors(tmp_path):
    with pytest.raises(GenotypeError, match="neither a string"):
        load_nb201_genotype(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_nb201_genotype(bad)
    with pytest.raises(GenotypeError, match="6 edges"):
        NB201Genotype(("none",) * 5)


def test_sampler_is_uniform_and_reproducible():
    def draw(n, seed):
        return sample_genotypes(n, seed, allow_duplicates=True, space="nb201")

    assert draw(5, 7) == draw(5, 7)
    cells = draw(20000, 0)
    for k in range(len(EDGES)):
        counts = Counter(c.ops[k] for c in cells)
        assert set(counts) == set(NB201_OPS)
        assert all(abs(n / 20000 - 0.2) < 0.015 for n in counts.values())
    # Whole cells are spread over the space, not a handful repeated.
    assert len({c.code() for c in cells}) > 11000


def test_cell_picture(tmp_path):
    paths = draw_nb201_cell(EXAMPLE, tmp_path / "cell", title="nb201")
    assert [p.name for p in paths] == ["cell.png", "cell.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    root = ET.parse(paths[1]).getroot()
    texts = ["".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts.count("nor_conv_3x3") == 3 and texts.count("skip_connect") == 2
    assert {"0", "1", "2", "3", "nb201"} <= set(texts)
    image = nb201_cell_image(cell_string(ALL["none"]))
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == "uint8"
