"""`da.client` against a fake grpc.aio node: verified reads, lies caught with precise messages,
NOT_FOUND, an unreachable first address, the token sent only with SubmitBlob, waiting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from da.client import (
    AsyncDAClient,
    BlobRejected,
    ClientError,
    DAClient,
    RemoteError,
    VerificationError,
    WaitTimeout,
)
from da.v1 import da_pb2 as pb
from erasure.layout import blob_hash, normalize_namespace
from tests.da.client.fakes import (
    BLOBS,
    CHAIN_ID,
    OPERATORS,
    PRODUCER,
    STRANGER,
    TOKEN,
    FakeNode,
    closed_port,
    self_signed_certificate,
    serve,
)

PRODUCER_HEX = PRODUCER.public.hex()


def client(address: str, **kwargs: object) -> DAClient:
    options: dict[str, object] = {
        "producers": [address],
        "storage": [address],
        "light_clients": [address],
        "token": TOKEN,
        "chain_id": CHAIN_ID,
        "trusted_keys": [PRODUCER_HEX],
        "timeout": 5.0,
    }
    return DAClient(**(options | kwargs))  # type: ignore[arg-type]


def test_get_blobs_returns_every_listed_blob_verified(node: tuple[str, FakeNode]) -> None:
    address, _ = node
    with client(address) as c:
        blobs = c.get_blobs(1, b"alpha")
    assert [blob.data for blob in blobs] == [BLOBS[0][1], BLOBS[2][1]]
    assert all(blob.namespace == normalize_namespace(b"alpha") for blob in blobs)
    assert blobs[0].blob_hash == blob_hash(b"alpha", BLOBS[0][1])


def test_an_omitted_blob_is_a_verification_error(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    fake.omit = True
    missing = blob_hash(b"alpha", BLOBS[2][1]).hex()
    with client(address) as c, pytest.raises(VerificationError) as caught:
        c.get_blobs(1, b"alpha")
    assert f"blob {missing}" in str(caught.value)
    assert "listed in the header but was not served" in str(caught.value)


def test_a_bad_proof_names_the_cell(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    fake.tamper = True
    with client(address) as c, pytest.raises(VerificationError) as caught:
        c.get_blobs(1, b"beta")
    assert "the proof of cell (row 0, col" in str(caught.value)
    assert "does not verify" in str(caught.value)


def test_a_header_signed_by_an_untrusted_key_is_refused(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    fake.signer = STRANGER  # the header still names PRODUCER: its signature is wrong
    with client(address) as c:
        with pytest.raises(VerificationError, match="header 1 from .*signature"):
            c.get_blobs(1, b"beta")
        with pytest.raises(VerificationError, match="signature"):
            c.header(1)


def test_an_unknown_height_is_not_found(node: tuple[str, FakeNode]) -> None:
    address, _ = node
    with client(address) as c, pytest.raises(RemoteError) as caught:
        c.get_blobs(7, b"beta")
    assert caught.value.code == "NOT_FOUND"


def test_an_unavailable_first_address_moves_on(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    dead = closed_port()
    with client(address, producers=[dead, address], storage=[dead, address]) as c:
        receipt = c.submit(b"rollup", b"batch 1")
        assert receipt.state == "PENDING"
        assert c.get_blobs(1, b"beta")[0].data == BLOBS[1][1]
    with client(address, producers=[dead]) as c, pytest.raises(RemoteError) as caught:
        c.submit(b"rollup", b"batch 1")
    assert caught.value.code == "UNAVAILABLE" and caught.value.address == dead


def test_submit_sends_the_token_and_checks_the_hash_locally(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    with client(address) as c:
        receipt = c.submit(b"rollup", b"batch 2")
    assert receipt.blob_hash == blob_hash(b"rollup", b"batch 2")
    assert fake.submitted == [(normalize_namespace(b"rollup"), b"batch 2", f"Bearer {TOKEN}")]
    with client(address, token=None) as c, pytest.raises(RemoteError, match="UNAUTHENTICATED"):
        c.submit(b"rollup", b"batch 2")


@pytest.mark.parametrize(
    ("namespace", "data", "message"),
    [(b"", b"x", "namespace"), (bytes(29), b"x", "reserved"), (b"ns", b"", "1..")],
)
def test_submit_validates_before_sending(
    node: tuple[str, FakeNode], namespace: bytes, data: bytes, message: str
) -> None:
    address, fake = node
    with client(address) as c, pytest.raises(ClientError, match=message):
        c.submit(namespace, data)
    assert fake.submitted == []


def test_wait_included_and_certified(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    fake.states = [pb.PENDING, pb.INCLUDED, pb.CERTIFIED]
    with client(address) as c:
        receipt = c.submit(b"rollup", b"batch 3", wait="included", timeout=10)
        assert (receipt.state, receipt.height, receipt.start_cell) == ("INCLUDED", 1, 2)
        assert c.submit(b"rollup", b"batch 3", wait="certified", timeout=10).state == "CERTIFIED"
        fake.states = [pb.PENDING]
        with pytest.raises(WaitTimeout, match="still PENDING"):
            c.submit(b"rollup", b"batch 4", wait="included", timeout=0.6)
        fake.states = [pb.REJECTED]
        with pytest.raises(BlobRejected):
            c.submit(b"rollup", b"batch 5", wait="included", timeout=5)


def test_certificate_verified_against_operators(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    operators = [key.public.hex() for key in OPERATORS]
    with client(address) as c:
        cert = c.certificate(1, operators, quorum=2)
        assert cert.header_hash == fake.block.signed.hash and len(cert.public_keys) == 2
        with pytest.raises(VerificationError, match="fewer than the quorum of 3"):
            c.certificate(1, operators, quorum=3)
        with pytest.raises(VerificationError, match="is not a given operator"):
            c.certificate(1, operators[1:])


def test_availability_and_health(node: tuple[str, FakeNode]) -> None:
    address, _ = node
    with client(address) as c:
        verdict = c.availability(1)
        assert (verdict.status, verdict.samples) == ("AVAILABLE", 16)
        assert c.health(address) == "SERVING"


def test_reads_need_a_trust_root(node: tuple[str, FakeNode]) -> None:
    address, _ = node
    with client(address, trusted_keys=[]) as c, pytest.raises(ClientError, match="trust root"):
        c.get_blobs(1, b"beta")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_verified_against_the_given_ca(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with serve(FakeNode(), tls=(cert, key)) as address:
        with client(address, tls_ca=cert) as c:
            assert c.get_blobs(1, b"beta")[0].data == BLOBS[1][1]
        with client(address) as c, pytest.raises(RemoteError, match="UNAVAILABLE"):
            c.get_blobs(1, b"beta")  # plaintext to a TLS server


async def test_the_async_client_has_the_same_methods(node: tuple[str, FakeNode]) -> None:
    address, fake = node
    async with AsyncDAClient(
        [address], [address], token=TOKEN, chain_id=CHAIN_ID, trusted_keys=[PRODUCER.public]
    ) as c:
        receipt = await c.submit(b"rollup", b"async", wait="included", timeout=5)
        blobs = await c.get_blobs(receipt.height, b"beta")
        assert blobs[0].data == BLOBS[1][1]
        assert (await c.header()).header.height == 1
