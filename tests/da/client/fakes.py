"""A fake node for client and CLI tests: real encoded blobs, a real signed header and certificate,
served by a real grpc.aio server (create_server) on a thread's event loop; switches make it lie."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from da import signing
from da.api.config import (
    ATTESTATION_SERVICE,
    BLOB_SERVICE,
    HEADER_SERVICE,
    SAMPLING_SERVICE,
    ServerConfig,
)
from da.api.server import create_server, stop_server
from da.header import Header, SignedHeader, blob_cells, blob_entries_for_namespace, sign_header
from da.signing import KeyPair, generate_keypair
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.layout import blob_hash
from erasure.square import ExtendedSquare, encode_square

CHAIN_ID = "test"
TOKEN = "client-token"
BLOBS = [
    (b"alpha", b"hello, available world\n" * 200),
    (b"beta", bytes(range(256)) * 30),
    (b"alpha", b"second alpha blob"),
]
PRODUCER = generate_keypair(b"\x07" * 32)
STRANGER = generate_keypair(b"\x08" * 32)
OPERATORS = [generate_keypair(bytes([9 + i]) * 32) for i in range(3)]


@dataclass
class Block:
    square: ExtendedSquare
    signed: SignedHeader


def make_block(key: KeyPair = PRODUCER, height: int = 1) -> Block:
    square = encode_square(BLOBS, max_rows=4)
    header = Header(
        chain_id=CHAIN_ID,
        height=height,
        time_ms=1,
        prev_hash=bytes(32),
        k=square.k,
        commitments=square.commitments,
        blobs=square.blob_index,
        producer=key.public,
    )
    return Block(square, sign_header(header, key.secret))


@dataclass
class FakeNode(
    da_pb2_grpc.BlobServiceServicer,
    da_pb2_grpc.HeaderServiceServicer,
    da_pb2_grpc.AttestationServiceServicer,
    da_pb2_grpc.SamplingServiceServicer,
):
    """Serves height 1. `omit` drops the namespace's last blob, `tamper` flips a byte of a cell,
    `signer` signs the header with another key; `states` are the GetBlobStatus answers in turn."""

    block: Block = field(default_factory=make_block)
    omit: bool = False
    tamper: bool = False
    signer: KeyPair | None = None
    states: list[int] = field(default_factory=lambda: [pb.INCLUDED])
    submitted: list[tuple[bytes, bytes, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.omit = self.tamper = False
        self.signer = None
        self.states = [pb.INCLUDED]
        self.submitted.clear()

    async def SubmitBlob(self, request: Any, context: Any) -> Any:
        metadata = dict(context.invocation_metadata())
        self.submitted.append((request.namespace, request.data, metadata.get("authorization", "")))
        digest = blob_hash(request.namespace, request.data)
        return pb.SubmitBlobResponse(blob_hash=digest, status=pb.BlobStatus(state=pb.PENDING))

    async def GetBlobStatus(self, request: Any, context: Any) -> Any:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        height = 1 if state in (pb.INCLUDED, pb.CERTIFIED) else 0
        return pb.BlobStatus(state=state, height=height, start_cell=height and 2)

    async def GetHeader(self, request: Any, context: Any) -> Any:
        await self._known(request.height, context)
        signed = self.block.signed
        signature = signed.signature
        if self.signer is not None:
            signature = signing.sign(self.signer.secret, signed.hash)
        return pb.SignedHeader(header=signed.raw, signature=signature)

    async def GetBlobs(self, request: Any, context: Any) -> Any:
        await self._known(request.height, context)
        entries = blob_entries_for_namespace(self.block.signed.header, request.namespace)
        if self.omit:
            entries = entries[:-1]
        return pb.GetBlobsResponse(blobs=[self._blob(entry) for entry in entries])

    def _blob(self, entry: Any) -> Any:
        cells = []
        for ref in blob_cells(entry):
            data = bytearray(self.block.square.cell(ref.row, ref.col))
            if self.tamper:
                data[-1] ^= 1
            proof = self.block.square.proof(ref.row, ref.col)
            cells.append(pb.Cell(row=ref.row, col=ref.col, data=bytes(data), proof=proof))
        return pb.Blob(
            namespace=entry.namespace,
            blob_hash=entry.blob_hash,
            start_cell=entry.start_cell,
            cells=cells,
        )

    async def GetCertificate(self, request: Any, context: Any) -> Any:
        await self._known(request.height, context)
        digest = self.block.signed.hash
        signers = OPERATORS[:2]
        aggregate = signing.aggregate(signing.sign(key.secret, digest) for key in signers)
        return pb.Certificate(
            height=1,
            header_hash=digest,
            public_keys=[key.public for key in signers],
            aggregate_signature=aggregate,
        )

    async def GetAvailability(self, request: Any, context: Any) -> Any:
        await self._known(request.height, context)
        return pb.AvailabilityResponse(height=1, status=pb.AVAILABLE, confidence=0.99, samples=16)

    async def _known(self, height: int, context: Any) -> None:
        if height not in (0, 1):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no block at height {height}")


SERVICES = [BLOB_SERVICE, HEADER_SERVICE, ATTESTATION_SERVICE, SAMPLING_SERVICE]


@contextmanager
def serve(fake: FakeNode, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve `fake` (token required for SubmitBlob; TLS with `tls` = (cert, key) PEM files) on a
    thread's loop; yields "127.0.0.1:port"."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Any, int]:
        return await create_server(
            ServerConfig(
                listen="127.0.0.1:0",
                auth_token=TOKEN,
                tls_cert=tls[0] if tls else None,
                tls_key=tls[1] if tls else None,
            ),
            [
                (da_pb2_grpc.add_BlobServiceServicer_to_server, fake),
                (da_pb2_grpc.add_HeaderServiceServicer_to_server, fake),
                (da_pb2_grpc.add_AttestationServiceServicer_to_server, fake),
                (da_pb2_grpc.add_SamplingServiceServicer_to_server, fake),
            ],
            rpc_metrics=None,
            service_names=SERVICES,
        )

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(stop_server(server, grace=None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def closed_port() -> str:
    """An address nothing listens on (UNAVAILABLE)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), made with the openssl command."""
    import subprocess

    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
