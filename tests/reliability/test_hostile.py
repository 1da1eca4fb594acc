"""Hostile clients (PROTOCOL.md §11): one host opening many connections cannot take every stream
slot or the node's call budget, other clients keep their normal latency meanwhile, one request's
reply stays bounded in bytes, and a subscription from long-pruned history starts at what is held.

The abusive host is real: its connections go through a TCP proxy whose upstream side binds
127.0.0.2, so the storage node sees a second host beside the test's own 127.0.0.1.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import grpc

from da.header import signed_header_from_bytes
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_light_client import wait_status
from tests.reliability.helpers import TcpProxy, fed, head, own_channel

ABUSIVE_HOST = "127.0.0.2"
HOST_STREAMS = 8
ABUSE_CONNECTIONS = 24
FLOOD_THREADS = 4


def samples_request(height: int, count: int) -> pb.GetSamplesRequest:
    coords = [pb.CellCoord(row=i // 128, col=i % 128) for i in range(count)]
    return pb.GetSamplesRequest(height=height, coords=coords)


def polite_latencies(target: str, calls: int) -> list[float]:
    """Seconds per GetSamples of 16 cells of the newest block (a light client's request)."""
    latencies = []
    with own_channel(target) as ch:
        stub = da_pb2_grpc.ShareServiceStub(ch)
        for _ in range(calls):
            request = samples_request(head(target), 16)  # fresh: old blocks are pruned
            start = time.monotonic()
            reply = stub.GetSamples(request, timeout=5)
            latencies.append(time.monotonic() - start)
            assert len(reply.cells) == len(request.coords)
            time.sleep(0.1)
    return latencies


@dataclass
class Opened:
    """A subscription and how it began: its first header, or the refusal's code."""

    stream: Any
    code: grpc.StatusCode
    first_height: int = 0

    def close(self) -> None:
        self.stream.cancel()


def open_stream(channel: grpc.Channel, from_height: int) -> Opened:
    """Subscribe from `from_height` and read the first header."""
    stream = da_pb2_grpc.HeaderServiceStub(channel).SubscribeHeaders(
        pb.SubscribeHeadersRequest(from_height=from_height), timeout=60
    )
    try:
        first = next(stream)
    except grpc.RpcError as e:
        return Opened(stream, e.code())
    height = signed_header_from_bytes(first.header, first.signature).header.height
    return Opened(stream, grpc.StatusCode.OK, height)


def test_one_host_with_many_connections_does_not_starve_others(cluster: Cluster) -> None:
    producer, feeder = fed(cluster, interval=0.3)
    node = cluster.storage_node(
        "storage",
        producer,
        "--retention-blocks",
        "5",
        "--host-streams",
        str(HOST_STREAMS),
        "--host-rate-limit",
        "100",
    )
    proxy = TcpProxy(node.listen, source_host=ABUSIVE_HOST).heal()
    abuse: list[grpc.Channel] = []
    opened: list[Opened] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    flood_codes: list[grpc.StatusCode] = []
    try:
        wait_until(lambda: head(node) >= 5, timeout=90, what="five stored blocks")
        baseline = polite_latencies(node.listen, 20)

        # Pruned history: a subscription from height 1 starts at the lowest held height.
        with own_channel(node.listen) as ch:
            old = open_stream(ch, 1)
            assert old.code is grpc.StatusCode.OK
            assert old.first_height >= head(node) - 5, old.first_height
            old.close()

        # The abusive host: one stream per connection, far more connections than its slots.
        abuse = [own_channel(proxy.address) for _ in range(ABUSE_CONNECTIONS)]
        opened = [open_stream(ch, head(node)) for ch in abuse]
        codes = [o.code for o in opened]
        assert codes.count(grpc.StatusCode.OK) == HOST_STREAMS, codes
        assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        # ... and a flood of the largest GetSamples requests from the same host.
        big = samples_request(head(node), 128)

        def flood(channel: grpc.Channel) -> None:
            stub = da_pb2_grpc.ShareServiceStub(channel)
            while not stop.is_set():
                try:
                    stub.GetSamples(big, timeout=5)
                except grpc.RpcError as e:
                    flood_codes.append(e.code())

        threads = [
            threading.Thread(target=flood, args=(ch,), daemon=True)
            for ch in abuse[HOST_STREAMS : HOST_STREAMS + FLOOD_THREADS]
        ]
        for t in threads:
            t.start()

        # Other clients meanwhile: a stream of their own, samples at their usual latency, and a
        # light client that reaches a verdict.
        with own_channel(node.listen) as ch:
            mine = open_stream(ch, head(node))
            assert mine.code is grpc.StatusCode.OK
            mine.close()
        light = cluster.light_client("light", [node.listen])
        under_abuse = polite_latencies(node.listen, 20)
        got = wait_status(light, head(producer), pb.AVAILABLE, timeout=60)
        assert got.confidence >= 0.99
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for o in opened:
            o.close()
        for ch in abuse:
            ch.close()
        proxy.cut()
        feeder.stop()
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in flood_codes  # the host's rate limit bit
    # NOT_FOUND: the flood's height was pruned meanwhile (retention 5), nothing worse.
    allowed = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.NOT_FOUND}
    assert set(flood_codes) <= allowed, set(flood_codes)
    normal, abused = statistics.median(baseline), statistics.median(under_abuse)
    print(
        f"polite GetSamples p50: {normal * 1000:.1f} ms alone, {abused * 1000:.1f} ms under "
        f"abuse; p95 under abuse {statistics.quantiles(under_abuse, n=20)[-1] * 1000:.1f} ms"
    )
    assert abused <= 5 * normal + 0.05, (baseline, under_abuse)
    assert statistics.quantiles(under_abuse, n=20)[-1] < 1.0, under_abuse


def test_one_request_is_bounded_in_reply_bytes(cluster: Cluster) -> None:
    """Amplification: the largest GetSamples request (128 distinct coordinates, under 1 KiB)
    answers at most ~270 KiB; one more coordinate, or a repeated one, is INVALID_ARGUMENT."""
    producer, feeder = fed(cluster)
    node = cluster.storage_node("storage", producer)
    try:
        wait_until(lambda: head(node) >= 1, timeout=60, what="a stored block")
        with own_channel(node.listen) as ch:
            stub = da_pb2_grpc.ShareServiceStub(ch)
            largest = samples_request(1, 128)
            reply = stub.GetSamples(largest, timeout=10)
            ratio = reply.ByteSize() / largest.ByteSize()
            print(
                f"GetSamples amplification: {largest.ByteSize()} B asked, "
                f"{reply.ByteSize()} B answered ({ratio:.0f}x)"
            )
            assert reply.ByteSize() <= 128 * (2048 + 48 + 16) and ratio < 600
            for bad in (
                samples_request(1, 129),
                pb.GetSamplesRequest(height=1, coords=[pb.CellCoord(row=0, col=0)] * 2),
            ):
                try:
                    stub.GetSamples(bad, timeout=10)
                except grpc.RpcError as e:
                    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
                else:
                    raise AssertionError("an over-long or repeated request was served")
    finally:
        feeder.stop()
