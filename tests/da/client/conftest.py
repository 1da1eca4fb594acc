"""The fake node shared by the client's and the command line's tests: one server per module,
its recorded state reset around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.da.client.fakes import FakeNode, serve


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeNode]]:
    fake = FakeNode()
    with serve(fake) as address:
        yield address, fake


@pytest.fixture
def node(served: tuple[str, FakeNode]) -> Iterator[tuple[str, FakeNode]]:
    served[1].reset()
    yield served
    served[1].reset()
