"""Search space: ops, supernet and network sizes against the reference DARTS implementation."""

from __future__ import annotations

import pytest
import torch

from robustnas.errors import UsageError
from robustnas.space.complexity import count_macs, count_parameters
from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.network import Network
from robustnas.space.darts.ops import OPS, PRIMITIVES, make_op
from robustnas.space.darts.supernet import SuperNet, derive_cell


def analytic_network_params(genotype, C: int, layers: int, classes: int) -> int:
    """Parameter count of a DARTS NetworkCIFAR derived by hand from the layer formulas.

    Independent of the module code: conv weights k·k·C_in·C_out (depthwise k·k·C), affine
    BN 2·C, FactorizedReduce(C_in→C) = C_in·C + 2C (two 1×1 convs to C/2 each).
    """
    def op(name: str, c: int, stride: int) -> int:
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            return 0
        if name == "skip_connect":
            return 0 if stride == 1 else c * c + 2 * c
        k = int(name[-1])
        block = c * k * k + c * c + 2 * c
        return 2 * block if name.startswith("sep") else block

    total = 3 * (3 * C) * 9 + 2 * (3 * C)  # stem
    c_pp, c_p, c = 3 * C, 3 * C, C
    reduction_prev = False
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c *= 2
        edges = genotype.reduce if reduction else genotype.normal
        total += c_pp * c + 2 * c  # preprocess0 (ReLUConvBN or FactorizedReduce: same size)
        total += c_p * c + 2 * c
        total += sum(op(name, c, 2 if reduction and idx < 2 else 1) for name, idx in edges)
        reduction_prev = reduction
        c_pp, c_p = c_p, 4 * c
    del reduction_prev
    return total + c_p * classes + classes


def test_primitives_registered_in_darts_order():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                          "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    assert set(OPS.names()) == set(PRIMITIVES)


def test_unknown_op_is_a_clear_error():
    with pytest.raises(UsageError, match="unknown operation 'conv_9x9'"):
        make_op("conv_9x9", 8, 1, True)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_ops_keep_channels_and_scale_resolution(name, stride):
    x = torch.randn(2, 8, 8, 8)
    y = make_op(name, 8, stride, affine=False)(x)
    assert y.shape == (2, 8, 8 // stride, 8 // stride)


def test_supernet_parameter_count_matches_reference():
    net = SuperNet(C=16, num_classes=10, layers=8)
    assert count_parameters(net) == 1_930_618
    assert [p.shape for p in net.arch_parameters()] == [torch.Size([14, 8])] * 2


def test_weights_and_arch_parameters_are_disjoint_and_complete(tiny_supernet):
    weights = {id(p) for p in tiny_supernet.weights()}
    arch = {id(p) for p in tiny_supernet.arch_parameters()}
    assert not weights & arch
    assert weights | arch == {id(p) for p in tiny_supernet.parameters()}


def test_darts_v2_parameter_count_matches_reference():
    net = Network(GENOTYPES.get("DARTS_V2"), C=36, layers=20, num_classes=10, auxiliary=True)
    assert count_parameters(net) == 3_349_342


@pytest.mark.parametrize("name", GENOTYPES.names())
def test_every_published_genotype_matches_analytic_count(name):
    geno = GENOTYPES.get(name)
    net = Network(geno, C=36, layers=20, num_classes=10)
    assert count_parameters(net) == analytic_network_params(geno, 36, 20, 10)


@pytest.mark.parametrize("name, millions", [("DARTS_V2", 3.3), ("PDARTS", 3.4),
                                            ("PC_DARTS", 3.6), ("ADVRUSH", 4.2)])
def test_published_sizes_as_reported_in_papers(name, millions):
    net = Network(GENOTYPES.get(name), C=36, layers=20, num_classes=10)
    assert round(count_parameters(net) / 1e6, 1) == millions


def test_supernet_macs_match_reference_anchor():
    macs = count_macs(SuperNet(C=16, num_classes=10, layers=8), (3, 32, 32))
    # DARTS' search supernet (Liu et al., ICLR 2019): about 300M MACs per 32×32 image
    assert 280e6 < macs < 320e6


def test_network_aux_head_and_drop_path(tiny_network, tiny_batch):
    x, _ = tiny_batch
    tiny_network.train()
    tiny_network.drop_path_prob = 0.5
    logits, aux = tiny_network(x)
    assert logits.shape == aux.shape == (8, 10)
    tiny_network.eval()
    out = tiny_network(x)
    assert isinstance(out, torch.Tensor) and out.shape == (8, 10)
    # drop-path is off in eval mode: two eval passes agree exactly
    assert torch.equal(out, tiny_network(x))


def test_derivation_keeps_top_two_non_none_edges():
    steps = 2  # 2 + 3 = 5 edges
    w = torch.zeros(5, len(PRIMITIVES))
    w[:, 0] = 10.0  # "none" dominates everywhere but must be ignored
    w[0, PRIMITIVES.index("sep_conv_3x3")] = 0.9
    w[1, PRIMITIVES.index("skip_connect")] = 0.8
    w[2, PRIMITIVES.index("max_pool_3x3")] = 0.1
    w[3, PRIMITIVES.index("dil_conv_5x5")] = 0.7
    w[4, PRIMITIVES.index("sep_conv_5x5")] = 0.6
    assert derive_cell(w, PRIMITIVES, steps) == [
        ("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 1), ("sep_conv_5x5", 2)]


def test_supernet_forward_and_genotype(tiny_supernet, tiny_batch):
    x, _ = tiny_batch
    assert tiny_supernet(x).shape == (8, 10)
    geno = tiny_supernet.genotype()
    assert len(geno.normal) == len(geno.reduce) == 8


def test_normalisation_lives_inside_the_model(tiny_supernet, tiny_batch):
    x, _ = tiny_batch
    torch.testing.assert_close(tiny_supernet.normalize(x), (x - 0.5) / 0.25)


@pytest.mark.parametrize("steps", [2, 3])
def test_supernet_with_other_node_counts_concatenates_all_nodes(steps):
    # `--set steps=2` used to fail with a size mismatch: the cell concatenated 4 states
    net = SuperNet(C=4, num_classes=10, layers=3, steps=steps)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 10)
    genotype = net.genotype()
    assert genotype.normal_concat == tuple(range(2, 2 + steps))
    assert len(genotype.normal) == 2 * steps
    assert Network(C=4, num_classes=10, layers=3, genotype=genotype)(
        torch.rand(2, 3, 16, 16)).shape == (2, 10)
