"""Shared fixtures: tiny supernets and networks that run in milliseconds on CPU."""

from __future__ import annotations

import pytest
import torch

from robustnas.space.genotypes import GENOTYPES
from robustnas.space.network import Network
from robustnas.space.supernet import SuperNet


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Keep each test on few threads so parallel helpers and CI stay predictable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_supernet() -> SuperNet:
    """A 3-cell, C=4 supernet on 1×8×8 inputs (10 classes)."""
    torch.manual_seed(0)
    return SuperNet(C=4, num_classes=10, layers=3, steps=4, in_channels=1,
                    mean=(0.5,), std=(0.25,))


@pytest.fixture
def tiny_network() -> Network:
    """DARTS_V2 at C=4, 3 cells, on 1×8×8 inputs, with an auxiliary head."""
    torch.manual_seed(0)
    return Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=3, auxiliary=True,
                   in_channels=1, mean=(0.5,), std=(0.25,))


@pytest.fixture
def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Eight 1×8×8 images in [0, 1] with labels."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen)
