from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry

from da.metrics import LightMetrics
from da.signing import KeyPair
from erasure.square import ExtendedSquare
from tests.light_client.fakes import make_square, producer_key


@pytest.fixture(scope="session")
def square() -> ExtendedSquare:
    return make_square()


@pytest.fixture(scope="session")
def key() -> KeyPair:
    return producer_key()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> LightMetrics:
    return LightMetrics(registry)
