"""Attestations and DA certificates: checks, quorum of distinct keys, CERTIFIED blobs."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from da import signing
from da.certificate import Attestation
from da.errors import UnknownHeight
from da.metrics import ProducerMetrics
from da.producer.blocks import BuiltBlock
from da.producer.certify import Certifier
from da.producer.errors import BadAttestation, NoCertificate, NotAnOperator
from da.producer.mempool import submission_from_request
from da.store import blobs
from da.store.blobs import BlobState
from da.store.memory import MemoryStore
from tests.da.producer.conftest import MakeProducer

NODES = [signing.generate_keypair(bytes([i]) * 32) for i in (1, 2, 3)]


def attestation(block: BuiltBlock, node: signing.KeyPair = NODES[0]) -> Attestation:
    h = block.signed.hash
    return Attestation(block.height, h, node.public, signing.sign(node.secret, h))


@pytest.fixture
async def stored(make_producer: MakeProducer) -> tuple[MemoryStore, BuiltBlock]:
    store = MemoryStore()
    producer, mempool, _ = make_producer(store)
    for data in (b"first", b"second"):
        await mempool.submit(submission_from_request(b"\x05", data, 1 << 20))
    block = await producer.produce_once()
    assert block is not None
    return store, block


OPERATORS = frozenset(node.public for node in NODES)


def certifier(store: MemoryStore, quorum: int = 2, operators: frozenset[bytes] = OPERATORS):  # type: ignore[no-untyped-def]
    return Certifier(
        store, ProducerMetrics(CollectorRegistry()), quorum=quorum, operators=operators
    )


async def test_quorum_of_distinct_keys_forms_a_certificate(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    c = certifier(store, quorum=2)
    assert await c.attest(attestation(block, NODES[0]))
    assert await c.attest(attestation(block, NODES[0]))  # the same key again counts once
    with pytest.raises(NoCertificate):
        await c.certificate(1)
    for entry in block.signed.header.blobs:
        assert blobs.get_blob_record(store, entry.blob_hash).state is BlobState.INCLUDED  # type: ignore[union-attr]
    assert await c.attest(attestation(block, NODES[1]))
    cert = await c.certificate(1)
    assert cert.header_hash == block.signed.hash
    assert sorted(cert.public_keys) == sorted(n.public for n in NODES[:2])
    assert signing.verify_aggregate(cert.public_keys, cert.header_hash, cert.aggregate_signature)
    for entry in block.signed.header.blobs:
        record = blobs.get_blob_record(store, entry.blob_hash)
        assert record is not None and record.state is BlobState.CERTIFIED
        assert (record.height, record.start_cell) == (1, entry.start_cell)


async def test_a_later_attestation_does_not_change_the_certificate(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    c = certifier(store, quorum=1)
    await c.attest(attestation(block, NODES[0]))
    first = await c.certificate(1)
    assert await c.attest(attestation(block, NODES[1]))
    assert await c.certificate(1) == first


async def test_wrong_header_hash_is_refused(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    node = NODES[0]
    other = b"\x01" * 32
    att = Attestation(1, other, node.public, signing.sign(node.secret, other))
    with pytest.raises(BadAttestation):
        await certifier(store).attest(att)


async def test_bad_signature_is_refused(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    good = attestation(block, NODES[0])
    forged = Attestation(1, good.header_hash, NODES[1].public, good.signature)
    with pytest.raises(BadAttestation):
        await certifier(store).attest(forged)


async def test_unknown_height_is_not_found(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    att = attestation(block)
    with pytest.raises(UnknownHeight):
        await certifier(store).attest(
            Attestation(7, att.header_hash, att.public_key, att.signature)
        )


async def test_only_configured_operators_count(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    c = certifier(store, quorum=1, operators=frozenset({NODES[2].public}))
    with pytest.raises(NotAnOperator):  # PERMISSION_DENIED at the edge (PROTOCOL.md §11)
        await c.attest(attestation(block, NODES[0]))
    with pytest.raises(NoCertificate):
        await c.certificate(1)
    assert await c.attest(attestation(block, NODES[2]))
    assert (await c.certificate(1)).public_keys == (NODES[2].public,)


async def test_without_operators_nothing_is_certified(stored) -> None:  # type: ignore[no-untyped-def]
    store, block = stored
    c = certifier(store, quorum=1, operators=frozenset())
    for node in NODES:
        with pytest.raises(NotAnOperator):
            await c.attest(attestation(block, node))
    with pytest.raises(NoCertificate):
        await c.certificate(1)
