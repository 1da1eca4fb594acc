"""The producer as a real process: submit -> block -> header published -> cells served; error
codes; duplicates; attestations and certificates; bearer token; kill -9 exactly-once.
Blobs stay tiny (k = 1 or 2) so every block encodes in well under a second."""

from __future__ import annotations

import os
import signal
import time

import grpc
import psutil
import pytest

from da import signing
from da.header import SignedHeader, signed_header_from_bytes, trust_root_from_hex
from da.header import verify_signed_header as verify_header
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure import kzg
from erasure.constants import CELLS_PER_EXT_ROW
from erasure.layout import blob_hash
from tests.integration.harness import (
    Cluster,
    DaProcess,
    metric_value,
    scrape,
    wait_serving,
    wait_until,
)

pytestmark = pytest.mark.slow

TIMEOUT = 10.0
NS_A, NS_B = b"\x0a", b"\x0b\x0b"
TOKEN = "producer-test-token"


class Client:
    """Blocking stubs on one channel to a process."""

    def __init__(self, node: DaProcess, token: str | None = None) -> None:
        self.channel = grpc.insecure_channel(node.listen)
        self.blobs = da_pb2_grpc.BlobServiceStub(self.channel)
        self.headers = da_pb2_grpc.HeaderServiceStub(self.channel)
        self.shares = da_pb2_grpc.ShareServiceStub(self.channel)
        self.attestations = da_pb2_grpc.AttestationServiceStub(self.channel)
        self.auth = (("authorization", f"Bearer {token}"),) if token else ()

    def submit(self, namespace: bytes, data: bytes) -> pb.SubmitBlobResponse:
        req = pb.SubmitBlobRequest(namespace=namespace, data=data)
        return self.blobs.SubmitBlob(req, metadata=self.auth, timeout=TIMEOUT)

    def status(self, h: bytes) -> pb.BlobStatus:
        return self.blobs.GetBlobStatus(pb.GetBlobStatusRequest(blob_hash=h), timeout=TIMEOUT)

    def included(self, h: bytes, timeout: float = 60) -> pb.BlobStatus:
        def check() -> pb.BlobStatus | None:
            s = self.status(h)
            return s if s.state in (pb.INCLUDED, pb.CERTIFIED) else None

        return wait_until(check, timeout=timeout, what=f"blob {h.hex()[:12]} included")

    def header(self, height: int) -> SignedHeader:
        msg = self.headers.GetHeader(pb.GetHeaderRequest(height=height), timeout=TIMEOUT)
        return signed_header_from_bytes(msg.header, msg.signature)

    def close(self) -> None:
        self.channel.close()


def code_of(call, *args, **kw) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=TIMEOUT, **kw)
    return caught.value.code()  # type: ignore[no-any-return, attr-defined]


def verify_cells(signed: SignedHeader, cells: list[pb.Cell]) -> bool:
    commitments = [signed.header.commitments[c.row] for c in cells]
    return kzg.verify_cells(
        commitments, [c.col for c in cells], [c.data for c in cells], [c.proof for c in cells]
    )


OPERATORS = [signing.generate_keypair(bytes([i]) * 32) for i in (1, 2)]
STRANGER = signing.generate_keypair(bytes([3]) * 32)


def test_submit_include_publish_serve(cluster: Cluster) -> None:
    operators = [a for key in OPERATORS for a in ("--operator", key.public.hex())]
    producer = cluster.producer(
        "producer", "--quorum", "2", "--max-blob-bytes", "200000", *operators
    )
    client = Client(producer)
    try:
        big = bytes(range(256)) * 600  # 153600 bytes: with the others, a k = 2 square
        sent = [
            client.submit(NS_B, b"b-blob"),
            client.submit(NS_A, big),
            client.submit(NS_A, b"a-second"),
        ]
        assert all(r.status.state == pb.PENDING for r in sent)
        assert sent[0].blob_hash == blob_hash(NS_B, b"b-blob")
        statuses = [client.included(r.blob_hash) for r in sent]
        height = statuses[0].height
        assert height >= 1

        signed = client.header(height)
        trust = trust_root_from_hex(cluster.chain_id, [cluster.producer_pub])
        verify_header(signed, trust)  # signature by the producer key, commitments consistent
        assert client.header(0).header.height >= height  # 0 = latest
        by_hash = {e.blob_hash: e for e in signed.header.blobs}
        for r, s in zip(sent, statuses, strict=True):
            if s.height == height:
                assert by_hash[r.blob_hash].start_cell == s.start_cell
        k = signed.header.k

        # every extended row verifies against its commitment
        for row in range(2 * k):
            got = client.shares.GetRow(pb.GetRowRequest(height=height, row=row), timeout=TIMEOUT)
            assert len(got.cells) == CELLS_PER_EXT_ROW and verify_cells(signed, list(got.cells))

        # samples come back in the order asked (parity cells included; a repeat is refused)
        coords = [(2 * k - 1, 127), (0, 0), (k, 64), (0, 1), (1, 5)]
        req = pb.GetSamplesRequest(
            height=height, coords=[pb.CellCoord(row=r, col=c) for r, c in coords]
        )
        got = client.shares.GetSamples(req, timeout=TIMEOUT)
        assert [(c.row, c.col) for c in got.cells] == coords
        assert verify_cells(signed, list(got.cells))

        # GetBlobs serves the data with the cells holding it
        blobs_a = client.blobs.GetBlobs(
            pb.GetBlobsRequest(height=height, namespace=NS_A), timeout=TIMEOUT
        )
        served = {b.blob_hash: b.data for b in blobs_a.blobs}
        for r, data in ((sent[1], big), (sent[2], b"a-second")):
            if client.status(r.blob_hash).height == height:
                assert served[r.blob_hash] == data

        # unknown heights and out-of-range coordinates
        nf, bad = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(client.headers.GetHeader, pb.GetHeaderRequest(height=10_000)) == nf
        assert code_of(client.shares.GetRow, pb.GetRowRequest(height=10_000, row=0)) == nf
        far = pb.GetSamplesRequest(height=10_000, coords=[pb.CellCoord(row=0, col=0)])
        assert code_of(client.shares.GetSamples, far) == nf
        assert code_of(client.shares.GetRow, pb.GetRowRequest(height=height, row=2 * k)) == bad
        for r, c in ((2 * k, 0), (0, 128)):
            out = pb.GetSamplesRequest(height=height, coords=[pb.CellCoord(row=r, col=c)])
            assert code_of(client.shares.GetSamples, out) == bad
        twice = pb.GetSamplesRequest(height=height, coords=[pb.CellCoord(row=0, col=0)] * 2)
        assert code_of(client.shares.GetSamples, twice) == bad
        assert (
            code_of(client.blobs.GetBlobStatus, pb.GetBlobStatusRequest(blob_hash=bytes(32))) == nf
        )

        _check_attestations(client, signed, [r.blob_hash for r in sent])
        text = scrape(producer.metrics_port)
        assert (metric_value(text, "da_blocks_produced_total") or 0) >= 1
        assert metric_value(text, "da_blob_submissions_total", {"result": "accepted"}) == 3
        assert (metric_value(text, "da_producer_head_height") or 0) >= height
    finally:
        client.close()


def _check_attestations(client: Client, signed: SignedHeader, hashes: list[bytes]) -> None:
    """Quorum 2: one attestation is not enough, a bad one or a non-operator's is refused (no
    token is involved: PROTOCOL.md §11), two distinct operators certify."""
    height, h = signed.header.height, signed.hash
    nodes = OPERATORS

    def attest(key: signing.KeyPair, header_hash: bytes = h, sig: bytes | None = None):  # type: ignore[no-untyped-def]
        msg = pb.Attestation(
            height=height,
            header_hash=header_hash,
            public_key=key.public,
            signature=sig or signing.sign(key.secret, header_hash),
        )
        return client.attestations.Attest(msg, timeout=TIMEOUT)

    assert attest(nodes[0]).accepted
    with pytest.raises(grpc.RpcError) as caught:
        attest(STRANGER)  # a valid signature, but not by an operator
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    cert_req = pb.GetCertificateRequest(height=height)
    assert code_of(client.attestations.GetCertificate, cert_req) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        attest(nodes[1], sig=signing.sign(nodes[0].secret, h))  # not nodes[1]'s signature
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as caught:
        attest(nodes[1], header_hash=bytes(32))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert attest(nodes[1]).accepted
    cert = client.attestations.GetCertificate(cert_req, timeout=TIMEOUT)
    assert cert.header_hash == h and sorted(cert.public_keys) == sorted(n.public for n in nodes)
    assert signing.verify_aggregate(list(cert.public_keys), h, cert.aggregate_signature)
    for blob in signed.header.blobs:
        assert client.status(blob.blob_hash).state == pb.CERTIFIED
    assert hashes  # the submitted blobs of other heights stay INCLUDED


def test_bad_submissions_are_refused_and_the_server_keeps_serving(cluster: Cluster) -> None:
    producer = cluster.producer("producer", "--max-blob-bytes", "4096")
    client = Client(producer)
    try:
        bad, big = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
        for namespace, data, code in (
            (b"", b"x", bad),
            (b"\x01" * 30, b"x", bad),
            (bytes(29), b"x", bad),
            (b"\xff" * 29, b"x", bad),
            (NS_A, b"", bad),
            (NS_A, b"x" * 4097, big),
        ):
            req = pb.SubmitBlobRequest(namespace=namespace, data=data)
            assert code_of(client.blobs.SubmitBlob, req) == code, (namespace, len(data))
        wait_serving(producer.listen, timeout=5)

        # the same blob twice is one blob, in one block, once
        first = client.submit(NS_A, b"x" * 4096)
        second = client.submit(NS_A, b"x" * 4096)
        assert first.blob_hash == second.blob_hash
        status = client.included(first.blob_hash)
        third = client.submit(NS_A, b"x" * 4096)
        assert (third.status.state, third.status.height) == (pb.INCLUDED, status.height)
        assert count_inclusions(client, [first.blob_hash]) == {first.blob_hash: 1}
        text = scrape(producer.metrics_port)
        assert metric_value(text, "da_blob_submissions_total", {"result": "invalid"}) == 5
        assert metric_value(text, "da_blob_submissions_total", {"result": "too_large"}) == 1
        assert metric_value(text, "da_blob_submissions_total", {"result": "duplicate"}) == 2
    finally:
        client.close()


def count_inclusions(client: Client, hashes: list[bytes]) -> dict[bytes, int]:
    """How many times each hash appears in the blob index of every header of the chain."""
    counts = dict.fromkeys(hashes, 0)
    for height in range(1, client.header(0).header.height + 1):
        for entry in client.header(height).header.blobs:
            if entry.blob_hash in counts:
                counts[entry.blob_hash] += 1
    return counts


def test_kill9_keeps_every_acknowledged_blob_exactly_once(cluster: Cluster) -> None:
    # A 3 s block time makes "killed while blobs are pending" near certain (checked below).
    producer = cluster.producer("producer", "--block-time", "3")
    client = Client(producer)
    acked: list[bytes] = []
    try:
        acked += [client.submit(NS_A, b"early-%d" % i).blob_hash for i in range(3)]
        client.included(acked[0])
        # a burst, killed at once: some blobs pending, maybe a block mid-encode or mid-write
        acked += [client.submit(NS_B, b"burst-%d" % i).blob_hash for i in range(12)]
        producer.kill9()
    finally:
        client.close()
    producer.start()
    client = Client(producer)
    try:
        # Served before the encoding workers are up: the burst is still in the mempool.
        assert any(client.status(h).state == pb.PENDING for h in acked[3:])
        for h in acked:
            client.included(h)
        assert count_inclusions(client, acked) == dict.fromkeys(acked, 1)
        # the chain still links across the restart
        head = client.header(0).header.height
        for height in range(2, head + 1):
            assert client.header(height).header.prev_hash == client.header(height - 1).hash
    finally:
        client.close()


def test_bearer_token_guards_submit_blob_only(cluster: Cluster) -> None:
    token_file = cluster.tmp / "token"
    token_file.write_text(TOKEN + "\n")
    producer = cluster.producer("producer", "--auth-token-file", str(token_file))
    anonymous, wrong = Client(producer), Client(producer, "not-the-token")
    authorised = Client(producer, TOKEN)
    try:
        unauth = grpc.StatusCode.UNAUTHENTICATED
        req = pb.SubmitBlobRequest(namespace=NS_A, data=b"guarded")
        assert code_of(anonymous.blobs.SubmitBlob, req) == unauth
        assert code_of(wrong.blobs.SubmitBlob, req, metadata=wrong.auth) == unauth
        # Attest takes no token (PROTOCOL.md §11): a malformed one is refused for what it is.
        bad = grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(anonymous.attestations.Attest, pb.Attestation(height=1)) == bad
        sent = authorised.submit(NS_A, b"guarded")
        status = anonymous.included(sent.blob_hash)  # reads need no token
        assert anonymous.header(status.height).header.height == status.height
        assert producer.stop() == 0  # SIGTERM: a clean shutdown
    finally:
        for c in (anonymous, wrong, authorised):
            c.close()


def test_encoding_workers_die_with_a_killed_producer(cluster: Cluster) -> None:
    """kill -9 of the producer's own process only (not its process group, as a supervisor may
    do): its forkserver and encoding workers exit too, none keeps cores or memory."""
    producer = cluster.producer("orphans", "--workers", "2")
    try:
        assert producer.proc is not None
        main = psutil.Process(producer.proc.pid)
        # the resource tracker, the forkserver and 2 workers (started after the node serves)
        deadline = time.monotonic() + 60
        while len(descendants := main.children(recursive=True)) < 4:
            assert time.monotonic() < deadline, descendants
            time.sleep(0.2)
        os.kill(main.pid, signal.SIGKILL)
        producer.proc.wait(10)
        _, alive = psutil.wait_procs(descendants, timeout=15)
        assert not alive, [p.cmdline()[-1][:60] for p in alive]
    finally:
        producer.kill9()
