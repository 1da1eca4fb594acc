"""Header verification, links and equivocation in `HeaderChain`."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry

from da.header import SignedHeader
from da.metrics import LightMetrics
from da.signing import KeyPair
from da.store.memory import MemoryStore
from erasure.square import ExtendedSquare
from light_client.chain import HeaderChain, Offer
from light_client.peers import RawHeader
from tests.light_client.fakes import (
    make_square,
    producer_key,
    raw,
    resign,
    signed_chain,
    trust_root,
)


@pytest.fixture(scope="module")
def headers(square: ExtendedSquare, key: KeyPair) -> list[SignedHeader]:
    return signed_chain(square, key, 4)


def new_chain(
    key: KeyPair, store: MemoryStore | None = None, metrics: LightMetrics | None = None
) -> HeaderChain:
    return HeaderChain(
        trust_root(key), store or MemoryStore(), max_rows=64, rng=random.Random(5), metrics=metrics
    )


def rejected(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("da_light_rejected_headers_total", {"reason": reason}) or 0.0


def test_a_linked_chain_is_accepted_and_persisted(
    headers: list[SignedHeader], key: KeyPair
) -> None:
    store = MemoryStore()
    chain = new_chain(key, store)
    assert [chain.offer(h, "p") for h in headers] == [Offer.ACCEPTED] * 4
    assert chain.head == 4 and chain.offer(headers[1], "p") is Offer.DUPLICATE
    reopened = new_chain(key, store)
    assert reopened.head == 4 and reopened.get(2) == headers[1]


def test_an_untrusted_key_or_bad_signature_is_rejected(
    headers: list[SignedHeader],
    key: KeyPair,
    metrics: LightMetrics,
    registry: CollectorRegistry,
) -> None:
    chain = new_chain(key, metrics=metrics)
    stranger = producer_key(9)
    forged = resign(headers[0], stranger, producer=stranger.public)
    assert chain.offer(forged, "p") is Offer.FORGED
    bad_sig = SignedHeader(headers[0].header, headers[0].raw, headers[1].signature)
    assert chain.offer(bad_sig, "p") is Offer.FORGED
    assert rejected(registry, "untrusted_producer") == 1
    assert rejected(registry, "bad_signature") == 1
    assert chain.head == 0


def test_inconsistent_commitments_are_rejected(
    headers: list[SignedHeader],
    key: KeyPair,
    metrics: LightMetrics,
    registry: CollectorRegistry,
) -> None:
    other = make_square(b"another block entirely")
    commitments = (headers[0].header.commitments[0], other.commitments[1])
    signed = resign(headers[0], key, commitments=commitments)
    assert new_chain(key, metrics=metrics).offer(signed, "p") is Offer.FORGED
    assert rejected(registry, "inconsistent_commitments") == 1


def test_undecodable_bytes_are_counted(
    key: KeyPair, metrics: LightMetrics, registry: CollectorRegistry
) -> None:
    chain = new_chain(key, metrics=metrics)
    assert chain.decode(RawHeader(b"DAH1junk", bytes(96)), "p") is None
    assert rejected(registry, "invalid_header") == 1


def test_prev_hash_must_link_to_the_parent_and_the_child(
    headers: list[SignedHeader], key: KeyPair
) -> None:
    chain = new_chain(key)
    chain.offer(headers[0], "p")
    unlinked = resign(headers[1], key, prev_hash=b"\x01" * 32)
    assert chain.offer(unlinked, "p") is Offer.REJECTED
    backwards = new_chain(key)
    backwards.offer(headers[2], "p")  # child first, then a parent it does not link to
    assert backwards.offer(resign(headers[1], key, time_ms=7), "p") is Offer.REJECTED
    assert backwards.offer(headers[1], "p") is Offer.ACCEPTED


def test_equivocation_is_refused_logged_and_counted(
    headers: list[SignedHeader],
    key: KeyPair,
    metrics: LightMetrics,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = new_chain(key, metrics=metrics)
    chain.offer(headers[0], "p")
    twin = resign(headers[0], key, time_ms=123_456)
    assert chain.offer(twin, "evil") is Offer.EQUIVOCATION
    assert chain.get(1) == headers[0]
    assert registry.get_sample_value("da_light_equivocations_total") == 1
    assert "EQUIVOCATION" in caplog.text
    forged_twin = SignedHeader(twin.header, twin.raw, headers[1].signature)
    assert chain.offer(forged_twin, "evil") is Offer.FORGED  # not signed: not equivocation
    assert registry.get_sample_value("da_light_equivocations_total") == 1


def test_decode_then_offer(headers: list[SignedHeader], key: KeyPair) -> None:
    chain = new_chain(key)
    signed = chain.decode(raw(headers[0]), "p")
    assert signed is not None and chain.offer(signed, "p") is Offer.ACCEPTED
