"""Shared fixtures: tiny supernets and networks that run in milliseconds on CPU."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.network import Network
from robustnas.space.darts.supernet import SuperNet


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread per test: tiny models run fastest that way, and on a shared 2-core machine
    oversubscribed threads slow every process down many times over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits():
    """The bundled digits dataset (uint8 1×8×8 images, 10 classes)."""
    from robustnas.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def fit_digits(digits) -> Callable[..., nn.Module]:
    """``fit_digits(model, steps=150)``: full-batch Adam on the digits training split; the
    model comes back in eval mode with no gradients left on its parameters."""

    def fit(model: nn.Module, steps: int = 150) -> nn.Module:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        x, y = digits.train_x.float() / 255, digits.train_y
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        torch.set_num_threads(previous)
        return model.eval()

    return fit


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


# --- a real PostgreSQL server (tests/postgres_server.py says where it comes from) ---------

@pytest.fixture(scope="session")
def _postgres_session_server():
    """One server for the whole session: ``$ROBUSTNAS_TEST_POSTGRES`` (from ``.ci/run``),
    else a throwaway cluster started here and removed at the end; else every test using it
    is skipped, or fails under ``$ROBUSTNAS_REQUIRE_POSTGRES=1`` (CI)."""
    from postgres_server import ENV_URL, PostgresServer, PostgresUnavailable, unavailable

    # (pytest.fail/skip outside the except blocks: their reports then carry no traceback.)
    try:
        server, broken = PostgresServer.from_environment(), None
    except PostgresUnavailable as e:
        server, broken = None, str(e)
    if broken:  # named explicitly but unreachable: a broken setup, never a quiet skip
        pytest.fail(f"{ENV_URL} is set but {broken}", pytrace=False)
    if server is None:
        try:
            server, missing = PostgresServer.start_throwaway(), None
        except PostgresUnavailable as e:
            missing = str(e)
        if missing:
            unavailable(missing)
    yield server
    server.close()


@pytest.fixture
def postgres_server(_postgres_session_server):
    """The session's :class:`postgres_server.PostgresServer`: ``.url_for_new_database()``,
    ``.drop_database(url)``, ``.restart()``, ``.stop()``, ``.start()``, ``.outage(seconds)``,
    ``.is_running()``. A test that leaves it stopped gets it started again afterwards."""
    yield _postgres_session_server
    if _postgres_session_server.controllable and not _postgres_session_server.is_running():
        _postgres_session_server.start()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/NAME``,
    password included) of a fresh, empty database of its own, dropped after the test."""
    url = postgres_server.url_for_new_database()
    yield url
    postgres_server.drop_database(url)
