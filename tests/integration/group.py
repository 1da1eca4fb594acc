"""A producer group of real `da producer` processes (each with its own key and data directory)
beside a real etcd cluster, for the PROTOCOL.md §12 tests."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import grpc

from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from tests.integration.etcd_cluster import EtcdCluster
from tests.integration.harness import (
    Cluster,
    DaProcess,
    free_port,
    keygen,
    metric_value,
    scrape,
    wait_until,
)

TIMEOUT = 10.0


class ProducerGroup:
    """`size` replicas on fixed loopback ports (each names the others with `--replica`)."""

    def __init__(
        self,
        cluster: Cluster,
        etcd: EtcdCluster,
        *,
        size: int = 3,
        lease_seconds: int = 3,
        block_time: float = 1.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.cluster = cluster
        self.etcd = etcd
        self.lease_seconds = lease_seconds
        self.block_time = block_time
        self.extra_args = list(extra_args)  # after the defaults: a flag given again wins
        self.size = size
        self.ports = [free_port() for _ in range(size)]
        self.keys = [keygen(cluster.tmp / f"replica{i}.key") for i in range(size)]
        # The storage node whose attestations count (PROTOCOL.md §11: only --operator keys do).
        self.operator_key_file = cluster.tmp / "storage.key"
        self.operator = keygen(self.operator_key_file)
        self.procs: list[DaProcess | None] = [None] * size
        self._channels: dict[int, grpc.Channel] = {}
        for i in range(size):
            self.start(i)

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    @property
    def addresses(self) -> list[str]:
        return [self.address(i) for i in range(self.size)]

    def start(self, i: int, *, empty: bool = False) -> DaProcess:
        """(Re)start replica `i`; `empty`: with its data directory wiped first."""
        if empty:
            shutil.rmtree(self.cluster.tmp / f"replica{i}", ignore_errors=True)
        others = [a for j in range(self.size) if j != i for a in ("--replica", self.address(j))]
        args = [
            "producer",
            "--key-file",
            str(self.cluster.tmp / f"replica{i}.key"),
            "--chain-id",
            self.cluster.chain_id,
            "--block-time",
            str(self.block_time),
            "--workers",
            "1",
            "--lease-seconds",
            str(self.lease_seconds),
            # the checks poll many statuses from one connection; replication between the
            # replicas counts against the per-peer limit too (see the report)
            "--rate-limit",
            "2000",
            "--operator",
            self.operator,
            *self.etcd.etcd_args(),
            *others,
            *self.extra_args,
        ]
        self.procs[i] = self.cluster.spawn(f"replica{i}", args, listen_port=self.ports[i])
        return self.procs[i]  # type: ignore[return-value]

    def proc(self, i: int) -> DaProcess:
        p = self.procs[i]
        assert p is not None
        return p

    def alive(self) -> list[int]:
        """The replicas running (other processes appended to `procs` are not replicas)."""
        return [i for i, p in enumerate(self.procs[: self.size]) if p is not None and p.alive()]

    def metric(self, i: int, name: str) -> float | None:
        return metric_value(scrape(self.proc(i).metrics_port), name)

    def leaders(self) -> list[int]:
        found = []
        for i in self.alive():
            try:
                if self.metric(i, "da_producer_leader") == 1.0:
                    found.append(i)
            except OSError:
                pass
        return found

    def wait_leader(self, not_in: tuple[int, ...] = (), timeout: float = 60.0) -> int:
        def one() -> int | None:
            found = [i for i in self.leaders() if i not in not_in]
            return found[0] if len(found) == 1 else None

        return wait_until(
            lambda: (one(),) if one() is not None else None, timeout=timeout, what="one leader"
        )[0]  # type: ignore[no-any-return]

    def channel(self, i: int) -> grpc.Channel:
        if i not in self._channels:
            self._channels[i] = grpc.insecure_channel(self.address(i))
        return self._channels[i]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def header(self, i: int, height: int) -> pb.SignedHeader:
        stub = da_pb2_grpc.HeaderServiceStub(self.channel(i))
        return stub.GetHeader(pb.GetHeaderRequest(height=height), timeout=TIMEOUT)

    def head(self, i: int) -> int:
        from da.header import header_from_bytes

        try:
            return header_from_bytes(self.header(i, 0).header).height
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return 0
            raise

    def submit(self, i: int, namespace: bytes, data: bytes) -> pb.SubmitBlobResponse:
        stub = da_pb2_grpc.BlobServiceStub(self.channel(i))
        return stub.SubmitBlob(
            pb.SubmitBlobRequest(namespace=namespace, data=data), timeout=TIMEOUT
        )

    def status(self, i: int, blob_hash: bytes) -> pb.BlobStatus:
        stub = da_pb2_grpc.BlobServiceStub(self.channel(i))
        return stub.GetBlobStatus(pb.GetBlobStatusRequest(blob_hash=blob_hash), timeout=TIMEOUT)
