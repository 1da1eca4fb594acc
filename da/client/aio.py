"""`AsyncDAClient`: the client's methods as coroutines over `grpc.aio` channels.

Addresses are tried in the order given. A call moves on to the next address when one is
unreachable (UNAVAILABLE, DEADLINE_EXCEEDED), and for reads also when one does not hold the
height (NOT_FOUND) or answers something that fails verification; it raises what the last address
said, or the first verification failure. Every RPC has a timeout (`timeout`, seconds); only
`SubmitBlob` carries the bearer token (PROTOCOL.md §11).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from da.api.client import DEFAULT_RPC_TIMEOUT_SECONDS, bearer_metadata, open_channel
from da.api.convert import (
    availability_from_pb,
    blob_status_from_pb,
    certificate_from_pb,
    served_blob_from_pb,
    signed_header_from_pb,
)
from da.certificate import Certificate
from da.client.errors import BlobRejected, ClientError, RemoteError, VerificationError, WaitTimeout
from da.client.results import Availability, Blob, BlobStatus, Receipt
from da.client.verify import verify_blobs, verify_certificate, verify_header
from da.errors import DAError
from da.header import SignedHeader, TrustRoot
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.constants import BLOB_HASH_BYTES, MAX_ROWS_LIMIT
from erasure.errors import ErasureError
from erasure.layout import blob_hash, max_blob_bytes, normalize_namespace

T = TypeVar("T")
WAIT_STATES = {"included": ("INCLUDED", "CERTIFIED"), "certified": ("CERTIFIED",)}
POLL_INTERVAL_SECONDS = 0.5
UNREACHABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED")
READ_RETRY = (*UNREACHABLE, "NOT_FOUND")
PUBLIC_KEY_HEX_CHARS = 96


class AsyncDAClient:
    """The rollup's view of the network: producers (submit, status, certificates), storage nodes
    (verified reads), light clients (availability). Use `async with`, or `await close()`."""

    def __init__(
        self,
        producers: Sequence[str] = (),
        storage: Sequence[str] = (),
        *,
        light_clients: Sequence[str] = (),
        token: str | None = None,
        chain_id: str | None = None,
        trusted_keys: Iterable[str | bytes] = (),
        tls_ca: str | Path | None = None,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
    ) -> None:
        if timeout <= 0:
            raise ClientError(f"timeout must be positive, got {timeout}")
        self.producers = tuple(producers)
        self.storage = tuple(storage)
        self.light_clients = tuple(light_clients)
        self._token = token
        keys = frozenset(_public_key(key) for key in trusted_keys)
        self._trust = TrustRoot(chain_id, keys) if chain_id and keys else None
        self._tls_ca = Path(tls_ca) if tls_ca is not None else None
        self._timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> AsyncDAClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    # --- producers ---------------------------------------------------------------------------

    async def submit(
        self, namespace: bytes, data: bytes, *, wait: str | None = None, timeout: float = 60.0
    ) -> Receipt:
        """Submit `data` under `namespace` to the first producer that is up; with `wait`
        ("included" or "certified") poll its status until then or until `timeout` seconds.
        Raises `BlobRejected`, `WaitTimeout`, `RemoteError`, or `ClientError` for bad input."""
        namespace, data = _checked_submission(namespace, data)
        if wait is not None and wait not in WAIT_STATES:
            raise ClientError(f"wait must be None, 'included' or 'certified', got {wait!r}")
        expected = blob_hash(namespace, data)
        request = pb.SubmitBlobRequest(namespace=namespace, data=data)
        reply = await self._first(
            self._need(self.producers, "producers"),
            lambda address: self._call(
                address,
                da_pb2_grpc.BlobServiceStub,
                "SubmitBlob",
                request,
                metadata=bearer_metadata(self._token),
            ),
            retry=("UNAVAILABLE",),
        )
        if bytes(reply.blob_hash) != expected:
            raise VerificationError(
                f"the producer answered blob hash {bytes(reply.blob_hash).hex()}, "
                f"not sha256(namespace || data) = {expected.hex()}"
            )
        status = _status(expected, reply.status)
        if wait is not None:
            status = await self._wait(expected, WAIT_STATES[wait], wait, timeout, status)
        if status.state == "REJECTED":
            raise BlobRejected(expected, status.reason)
        return Receipt(expected, status.state, status.height, status.start_cell)

    async def _wait(
        self, digest: bytes, wanted: tuple[str, ...], name: str, timeout: float, status: BlobStatus
    ) -> BlobStatus:
        deadline = time.monotonic() + timeout
        while status.state not in (*wanted, "REJECTED"):
            if time.monotonic() + POLL_INTERVAL_SECONDS > deadline:
                raise WaitTimeout(digest, name, status.state, timeout)
            await asyncio.sleep(POLL_INTERVAL_SECONDS)
            status = await self.status(digest)
        return status

    async def status(self, blob_hash: bytes) -> BlobStatus:
        """The blob's state, from the producers (then the storage nodes)."""
        if len(blob_hash) != BLOB_HASH_BYTES:
            raise ClientError(f"a blob hash is {BLOB_HASH_BYTES} bytes, got {len(blob_hash)}")
        request = pb.GetBlobStatusRequest(blob_hash=blob_hash)
        reply = await self._first(
            self._need((*self.producers, *self.storage), "producers or storage nodes"),
            lambda address: self._call(
                address, da_pb2_grpc.BlobServiceStub, "GetBlobStatus", request
            ),
            retry=UNREACHABLE,
        )
        return _status(bytes(blob_hash), reply)

    async def certificate(
        self, height: int, operators: Iterable[str | bytes] | None = None, *, quorum: int = 1
    ) -> Certificate:
        """The block's DA certificate. With `operators` (public keys), verified: at least `quorum`
        signers, all operators, aggregate signature valid, over the trusted header's hash when
        the client has a trust root."""
        _check_height(height)
        request = pb.GetCertificateRequest(height=height)
        reply = await self._first(
            self._need(self.producers, "producers"),
            lambda address: self._call(
                address, da_pb2_grpc.AttestationServiceStub, "GetCertificate", request
            ),
            retry=READ_RETRY,
        )
        cert = _decoded(lambda: certificate_from_pb(reply), "certificate")
        if operators is not None:
            keys = [_public_key(key) for key in operators]
            trusted = (await self.header(height)).hash if self._trust is not None else None
            verify_certificate(cert, keys, quorum=quorum, header_hash=trusted)
        return cert

    # --- storage nodes -----------------------------------------------------------------------

    async def header(self, height: int = 0) -> SignedHeader:
        """The signed header at `height` (0: the latest), verified against the trust root."""
        if height < 0:
            raise ClientError(f"height must be >= 0, got {height}")
        trust = self._need_trust()
        return await self._first_verified(
            lambda address: self._verified_header(address, height, trust)
        )

    async def get_blobs(self, height: int, namespace: bytes) -> list[Blob]:
        """The blobs at `height` under `namespace`, in square order, each rebuilt from cells
        verified against the trusted header; `VerificationError` if a node served less or wrong."""
        _check_height(height)
        namespace = _namespace(namespace)
        trust = self._need_trust()

        async def read(address: str) -> list[Blob]:
            signed = await self._verified_header(address, height, trust)
            request = pb.GetBlobsRequest(height=height, namespace=namespace)
            reply = await self._call(address, da_pb2_grpc.BlobServiceStub, "GetBlobs", request)
            k = signed.header.k
            served = _decoded(
                lambda: [served_blob_from_pb(blob, k) for blob in reply.blobs], address
            )
            return await asyncio.to_thread(verify_blobs, signed.header, namespace, served, address)

        return await self._first_verified(read)

    async def _verified_header(self, address: str, height: int, trust: TrustRoot) -> SignedHeader:
        request = pb.GetHeaderRequest(height=height)
        reply = await self._call(address, da_pb2_grpc.HeaderServiceStub, "GetHeader", request)
        signed = _decoded(lambda: signed_header_from_pb(reply), address)
        await asyncio.to_thread(verify_header, signed, trust, height, address)
        return signed

    # --- light clients and health ------------------------------------------------------------

    async def availability(self, height: int, *, node: str | None = None) -> Availability:
        """A light client's verdict on `height` (from `node`, else the configured light clients)."""
        _check_height(height)
        request = pb.GetAvailabilityRequest(height=height)
        nodes = (node,) if node is not None else self._need(self.light_clients, "light clients")
        reply = await self._first(
            nodes,
            lambda address: self._call(
                address, da_pb2_grpc.SamplingServiceStub, "GetAvailability", request
            ),
            retry=READ_RETRY,
        )
        status = _decoded(lambda: availability_from_pb(reply.status), "availability")
        return Availability(reply.height, status.name, reply.confidence, reply.samples)

    async def health(self, node: str, service: str = "") -> str:
        """The gRPC health status of `node` ("SERVING", "NOT_SERVING", ...); "" = the server."""
        request = health_pb2.HealthCheckRequest(service=service)
        reply = await self._call(node, health_pb2_grpc.HealthStub, "Check", request)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    # --- plumbing ----------------------------------------------------------------------------

    async def _call(
        self, address: str, stub: Any, method: str, request: Any, *, metadata: Any = ()
    ) -> Any:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_channel(address, tls_ca=self._tls_ca)
        try:
            return await getattr(stub(channel), method)(
                request, timeout=self._timeout, metadata=metadata
            )
        except grpc.aio.AioRpcError as e:
            raise RemoteError(address, method, e.code().name, e.details() or "") from None

    async def _first(
        self, addresses: Sequence[str], call: Callable[[str], Awaitable[T]], *, retry: Sequence[str]
    ) -> T:
        """`call` at each address in turn until one answers; a code outside `retry` stops."""
        last: RemoteError | None = None
        for address in addresses:
            try:
                return await call(address)
            except RemoteError as e:
                if e.code not in retry:
                    raise
                last = e
        raise last or ClientError("no address to call")

    async def _first_verified(self, read: Callable[[str], Awaitable[T]]) -> T:
        """`read` at the storage nodes then the producers; the first that verifies wins."""
        addresses = self._need((*self.storage, *self.producers), "storage nodes or producers")
        failures: list[ClientError] = []
        for address in addresses:
            try:
                return await read(address)
            except VerificationError as e:
                failures.append(e)
            except RemoteError as e:
                if e.code not in READ_RETRY:
                    raise
                failures.append(e)
        raise next((e for e in failures if isinstance(e, VerificationError)), failures[-1])

    def _need(self, addresses: Sequence[str], what: str) -> Sequence[str]:
        if not addresses:
            raise ClientError(f"no {what} configured")
        return addresses

    def _need_trust(self) -> TrustRoot:
        if self._trust is None:
            raise ClientError("reading needs a trust root: pass chain_id and trusted_keys")
        return self._trust


def _status(digest: bytes, msg: pb.BlobStatus) -> BlobStatus:
    record = _decoded(lambda: blob_status_from_pb(msg), "blob status")
    return BlobStatus(digest, record.state.name, record.height, record.start_cell, record.reason)


def _decoded(convert: Callable[[], T], source: str) -> T:
    """A converter's result; malformed answers are verification failures."""
    try:
        return convert()
    except (DAError, ErasureError) as e:
        raise VerificationError(f"malformed answer from {source}: {e}") from e


def _checked_submission(namespace: bytes, data: bytes) -> tuple[bytes, bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ClientError(f"data must be bytes, got {type(data).__name__}")
    limit = max_blob_bytes(MAX_ROWS_LIMIT)
    if not 0 < len(data) <= limit:
        raise ClientError(f"a blob is 1..{limit} bytes, got {len(data)}")
    return _namespace(namespace), bytes(data)


def _namespace(namespace: bytes) -> bytes:
    try:
        return normalize_namespace(namespace)
    except ErasureError as e:
        raise ClientError(str(e)) from None


def _check_height(height: int) -> None:
    if height < 1:
        raise ClientError(f"height must be >= 1, got {height}")


def _public_key(key: str | bytes) -> bytes:
    raw = key if isinstance(key, bytes) else _from_hex(key)
    if len(raw) * 2 != PUBLIC_KEY_HEX_CHARS:
        raise ClientError(f"a public key is {PUBLIC_KEY_HEX_CHARS // 2} bytes, got {len(raw)}")
    return raw


def _from_hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ClientError(f"{text!r} is not hex") from None
