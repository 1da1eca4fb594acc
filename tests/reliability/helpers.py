"""Shared helpers of the reliability suite: metrics, whole-block verification against the
producer's header, a stoppable blob feeder, and a loopback TCP proxy that can be cut and healed.
The integration suite's helpers are reused where they fit (imported, not copied)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from da.header import SignedHeader, signed_header_from_bytes
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure import kzg
from erasure.constants import CELLS_PER_EXT_ROW
from tests.integration.harness import Cluster, DaProcess, metric_value, scrape

T = TypeVar("T")
TIMEOUT = 10.0
# gRPC Python shares one TCP connection between channels to the same target unless told not to;
# a client that must be its own peer (own connection, own rate-limit bucket) uses this.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def own_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=OWN_CONNECTION)


def patiently(call: Callable[[], T], attempts: int = 100) -> T:
    """`call()`, retried after a pause while the server answers RESOURCE_EXHAUSTED."""
    for _ in range(attempts - 1):
        try:
            return call()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            time.sleep(0.2)
    return call()


def metric(process: DaProcess, name: str, **labels: str) -> float:
    """One sample of a process's /metrics (0 when absent)."""
    return metric_value(scrape(process.metrics_port), name, labels or None) or 0.0


def header_at(node: DaProcess | str, height: int, timeout: float = TIMEOUT) -> SignedHeader:
    target = node if isinstance(node, str) else node.listen
    with grpc.insecure_channel(target) as ch:
        msg = da_pb2_grpc.HeaderServiceStub(ch).GetHeader(
            pb.GetHeaderRequest(height=height), timeout=timeout
        )
    return signed_header_from_bytes(msg.header, msg.signature)


def head(node: DaProcess | str) -> int:
    """The node's latest height (0 when it holds none)."""
    try:
        return header_at(node, 0).header.height
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise


def holds_whole_block(node: DaProcess, truth: SignedHeader) -> bool:
    """True iff `node` serves exactly `truth`'s header and every cell of its 2k x 128 EDS, each
    verifying against `truth`'s row commitments; False if it holds nothing at that height.
    Raises AssertionError for anything in between (a half-visible or wrong block)."""
    height = truth.header.height
    with grpc.insecure_channel(node.listen) as ch:
        try:
            msg = da_pb2_grpc.HeaderServiceStub(ch).GetHeader(
                pb.GetHeaderRequest(height=height), timeout=TIMEOUT
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            row_code = _row_code(ch, height)
            if row_code == grpc.StatusCode.OK and head(node) >= height:
                return holds_whole_block(node, truth)  # stored between the two calls
            assert row_code == grpc.StatusCode.NOT_FOUND, f"height {height}: row {row_code}"
            return False
        got = signed_header_from_bytes(msg.header, msg.signature)
        assert got.hash == truth.hash, f"{node.name} holds another header at {height}"
        shares = da_pb2_grpc.ShareServiceStub(ch)
        commitments = truth.header.commitments
        for row in range(2 * truth.header.k):
            cells = list(
                shares.GetRow(pb.GetRowRequest(height=height, row=row), timeout=TIMEOUT).cells
            )
            assert [(c.row, c.col) for c in cells] == [(row, c) for c in range(CELLS_PER_EXT_ROW)]
            assert kzg.verify_cells(
                [commitments[row]] * len(cells),
                [c.col for c in cells],
                [c.data for c in cells],
                [c.proof for c in cells],
            ), f"{node.name}: row {row} of height {height} fails its proofs"
    return True


def _row_code(ch: grpc.Channel, height: int) -> grpc.StatusCode:
    try:
        da_pb2_grpc.ShareServiceStub(ch).GetRow(
            pb.GetRowRequest(height=height, row=0), timeout=TIMEOUT
        )
    except grpc.RpcError as e:
        return e.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


class Feeder:
    """A thread submitting a small distinct blob every `interval` seconds until `stop()`;
    `acked` holds the blob_hash of every acknowledged submission."""

    def __init__(
        self,
        producer: DaProcess,
        namespace: bytes = b"rel",
        interval: float = 0.5,
        size: int = 200,
        backoff: float | None = None,
    ) -> None:
        self.producer = producer
        self.namespace = namespace
        self.interval = interval
        self.size = size
        self.backoff = interval if backoff is None else backoff
        self.acked: list[bytes] = []
        self.acked_at: dict[bytes, float] = {}  # blob_hash -> time.time() of the answer
        self.errors: list[grpc.StatusCode] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        with own_channel(self.producer.listen) as channel:
            stub = da_pb2_grpc.BlobServiceStub(channel)
            for n in itertools.count():
                if self._stop.is_set():
                    return
                stamp = f"{self.namespace!r} blob {n} {time.time_ns()} ".encode()
                data = (stamp * (self.size // len(stamp) + 1))[: self.size]
                try:
                    reply = stub.SubmitBlob(
                        pb.SubmitBlobRequest(namespace=self.namespace, data=data), timeout=5
                    )
                    self.acked.append(bytes(reply.blob_hash))
                    self.acked_at.setdefault(bytes(reply.blob_hash), time.time())
                except grpc.RpcError as e:
                    self.errors.append(e.code())  # down or busy; not acknowledged
                    self._stop.wait(self.backoff)
                    continue
                self._stop.wait(self.interval)


def fed(cluster: Cluster, *extra: str, interval: float = 0.5) -> tuple[DaProcess, Feeder]:
    producer = cluster.producer("producer", *extra)
    return producer, Feeder(producer, interval=interval).start()


class TcpProxy:
    """Forwards 127.0.0.1:port to `upstream` in threads. `cut()` drops every connection and
    refuses new ones (a partition that TCP notices); `heal()` listens again on the same port.
    With `source_host` (another loopback address, e.g. "127.0.0.2") the upstream connections
    come from that address: to the server, every client of the proxy is one other host."""

    def __init__(self, upstream: str, *, source_host: str | None = None) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._source = (source_host, 0) if source_host is not None else None
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def heal(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        for s in ([listener] if listener else []) + conns:
            _close(s)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(
                    self._upstream, timeout=5, source_address=self._source
                )
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def blackhole() -> tuple[str, Callable[[], None]]:
    """An address that accepts TCP connections and never answers (a hung peer); and its closer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()

    def close() -> None:
        for s in [listener, *held]:
            _close(s)

    return f"127.0.0.1:{listener.getsockname()[1]}", close
