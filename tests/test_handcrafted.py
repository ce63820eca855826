"""Hand-crafted CIFAR baselines: exact parameter counts, names, widths, small inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.space.complexity import count_parameters
from robustnas.space.handcrafted import (
    HANDCRAFTED,
    build_handcrafted,
    is_handcrafted,
    parse_handcrafted,
)
from robustnas.space.models import build_architecture, model_from_payload, model_payload

# Parameter counts of the public CIFAR definitions, 10 classes (kuangliu/pytorch-cifar for
# ResNet/VGG/DenseNet/MobileNetV2; Wong et al./Rice et al. for PreAct-ResNet-18;
# TRADES/RobustBench for WideResNet).
PUBLISHED = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "preact-resnet18": 11_172_170,
    "vgg16-bn": 14_728_266,
    "densenet121": 6_956_298,
    "mobilenetv2": 2_296_922,
    "wrn-28-10": 36_479_194,
    "wrn-34-10": 46_160_474,
}


def _count_on_meta(spec: str, **kwargs) -> int:
    with torch.device("meta"):  # no memory, no initialisation cost
        return count_parameters(build_handcrafted(spec, **kwargs))


def _bn(c: int) -> int:
    return 2 * c


def resnet18_formula(classes: int = 10) -> int:
    """ResNet-18 counted by hand from its layer list."""
    total = 3 * 64 * 9 + _bn(64)
    c_in = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            total += c_in * planes * 9 + _bn(planes) + planes * planes * 9 + _bn(planes)
            if s != 1 or c_in != planes:
                total += c_in * planes + _bn(planes)
            c_in = planes
    return total + 512 * classes + classes


def wrn_formula(depth: int, k: int, classes: int = 10) -> int:
    """WRN-depth-k counted by hand: stem, 3 groups of pre-activation blocks, BN, linear."""
    n = (depth - 4) // 6
    total = 3 * 16 * 9
    c_in = 16
    for base in (16, 32, 64):
        c = base * k
        for _ in range(n):
            total += _bn(c_in) + c_in * c * 9 + _bn(c) + c * c * 9
            if c_in != c:
                total += c_in * c
            c_in = c
    return total + _bn(c_in) + c_in * classes + classes


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_public_definition(name):
    assert _count_on_meta(name) == PUBLISHED[name]


def test_every_shipped_network_has_a_published_count():
    assert set(HANDCRAFTED.names()) == set(PUBLISHED)


def test_counts_match_hand_formulas():
    assert resnet18_formula() == PUBLISHED["resnet18"]
    assert wrn_formula(28, 10) == PUBLISHED["wrn-28-10"]
    assert wrn_formula(34, 10) == PUBLISHED["wrn-34-10"]
    assert _count_on_meta("wrn-16-4") == wrn_formula(16, 4)
    assert _count_on_meta("resnet18", num_classes=100) == resnet18_formula(100)
    assert _count_on_meta("wrn-40-2", num_classes=100) == wrn_formula(40, 2, 100)


def test_names_aliases_and_widths():
    assert parse_handcrafted("ResNet-18") == ("resnet18", 1.0)
    assert parse_handcrafted("preact_resnet18@0.5") == ("preact-resnet18", 0.5)
    assert parse_handcrafted("VGG16_BN") == ("vgg16-bn", 1.0)
    assert parse_handcrafted("WRN-34-10@0.25") == ("wrn-34-10", 0.25)
    assert parse_handcrafted("wideresnet-16-8") == ("wrn-16-8", 1.0)
    assert parse_handcrafted("DARTS_V2") is None and not is_handcrafted("DARTS_V2")
    for bad in ("resnet18@", "resnet18@abc", "resnet18@0", "resnet18@-1"):
        with pytest.raises(UsageError):
            parse_handcrafted(bad)
    with pytest.raises(UsageError):
        build_handcrafted("wrn-27-10")
    with pytest.raises(UsageError):
        build_handcrafted("alexnet")


def test_width_scales_channels():
    full = _count_on_meta("resnet18")
    half = _count_on_meta("resnet18@0.5")
    assert 0.2 * full < half < 0.3 * full  # conv weights scale with width²
    net = build_handcrafted("resnet18", width=0.25)
    assert net.stem[0].out_channels == 16 and net.classifier.in_features == 128
    assert net.describe() == "resnet18@0.25"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_cifar_stem_normalisation_and_small_inputs(name):
    torch.manual_seed(0)
    net = build_handcrafted(f"{name}@0.0625", num_classes=10, in_channels=1, mean=[0.3],
                            std=[0.4])
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.stem.modules()) \
        if hasattr(net, "stem") else True
    assert torch.allclose(net.normalize.mean.flatten(), torch.tensor([0.3]))
    x = torch.rand(2, 1, 8, 8)
    assert net(x).shape == (2, 10)
    feats = net.forward_features(x)
    assert feats.dim() == 4 and feats.shape[1] == net.classifier.in_features


def test_cifar_resolution_output():
    net = build_handcrafted("vgg16-bn@0.0625").eval()
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    assert net.forward_features(torch.rand(1, 3, 32, 32)).shape[-1] == 1


def test_payload_round_trip():
    torch.manual_seed(0)
    net = build_architecture("wrn-16-2@0.5", num_classes=5, in_channels=1).eval()
    payload = model_payload(net)
    assert payload["kind"] == "handcrafted" and payload["arch"]["name"] == "wrn-16-2"
    rebuilt = model_from_payload(payload).eval()
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(rebuilt(x), net(x))


def test_info_cli(capsys):
    assert main(["info", "resnet18@0.25", "--in-channels", "1", "--image-size", "8"]) == 0
    expected = count_parameters(build_handcrafted("resnet18@0.25", in_channels=1))
    out = capsys.readouterr().out
    assert f"{expected:,}" in out and "resnet18@0.25" in out
    assert main(["info", "wrn-28-10@x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("name", [
    "resnet18", "preact-resnet18",
    *(pytest.param(n, marks=pytest.mark.slow) for n in sorted(PUBLISHED)
      if n not in ("resnet18", "preact-resnet18"))])
def test_lipschitz_bound_is_above_the_local_jacobian_norm(name):
    """The certified bound must exceed ‖J(x)‖₂ (estimated by power iteration) anywhere."""
    from robustnas.evaluation.lipschitz import lipschitz_upper_bound

    torch.manual_seed(0)
    width = "0.25" if name.startswith("wrn") else "0.0625"
    net = build_handcrafted(f"{name}@{width}", in_channels=1, mean=[0.3], std=[0.4])
    with torch.no_grad():  # non-trivial batch-norm statistics
        for _ in range(3):
            net(torch.rand(16, 1, 8, 8))
    net.eval()
    bound = lipschitz_upper_bound(net, (1, 8, 8))
    x = torch.rand(1, 1, 8, 8)
    v = torch.randn_like(x)
    for _ in range(8):  # power iteration on JᵀJ
        v = v / v.norm()
        _, jv = torch.func.jvp(net, (x,), (v,))
        _, vjp = torch.func.vjp(net, x)
        (v,) = vjp(jv)
    sigma = float(torch.func.jvp(net, (x,), (v / v.norm(),))[1].norm())
    assert 0 < sigma <= bound
