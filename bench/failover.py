"""A producer group of three replicas beside a real 3-member etcd (PROTOCOL.md §12): how long a
leader kill stops production, and what replication costs submitters, against a single producer.

    python bench/failover.py [--quick] [--json]

1. Failover: a background submitter keeps small blobs pending; KILLS times the current leader is
   killed (kill -9) and the time to the first header signed by another replica served by a
   survivor is measured (min, median, max); the killed replica is restarted (same data
   directory) and caught up before the next kill. Bound: lease + one block time (a new leader
   must wait out the dead one's lease, then build one block). Target: median within 1.5x.
2. Submission throughput and latency: closed-loop threads submit 1 KiB blobs for the window to a
   single producer, then to the group's leader, both on this machine in this run, with the same
   flags (no rate limits) and the same submitters: first LIGHT_SUBMITTERS (a closed loop that few
   is bound by latency: each group acknowledgement waits for another replica's round trip and
   fsync), then SATURATING_SUBMITTERS (enough to keep both busy: their capacity). Target: at
   saturation the group acknowledges at least 0.8x the single producer's blobs per second.
   Shown beside it (no target): the CPU time of intake per acknowledged blob, all processes of
   the run but the encoding workers (the producers, the etcd members, the submitters): what
   replication costs the machine, whose two cores the group's six processes share. (Encoding
   costs both the same per blob and much of it falls after the window, when the backlog is
   built into blocks.)
`--quick`: 2 kills, 4 s windows, no target judged.
"""

import itertools
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from procs import DaProcess, cluster, cpu_seconds  # noqa: E402
from run import BenchRow, row, run_sized  # noqa: E402  (bench/run.py: the table convention)

from da.header import header_from_bytes  # noqa: E402
from da.v1 import da_pb2 as pb  # noqa: E402
from da.v1 import da_pb2_grpc  # noqa: E402
from tests.integration.etcd_cluster import EtcdCluster  # noqa: E402
from tests.integration.group import ProducerGroup  # noqa: E402

LEASE_SECONDS = 2
BLOCK_TIME_SECONDS = 1.0
LIGHT_SUBMITTERS = 8
SATURATING_SUBMITTERS = 32
BLOB_BYTES = 1024
NS = b"\x0f"
FAILOVER_TARGET = 1.5
THROUGHPUT_TARGET = 0.8
# Both producers without rate limits (per connection and per host): the closed loop measures
# what they sustain, not a limit; the same flags for both.
UNLIMITED = ("--rate-limit", "0", "--host-rate-limit", "0", "--host-concurrent-calls", "1000")


@dataclass(frozen=True)
class Sizes:
    kills: int
    window_seconds: float


@dataclass(frozen=True)
class Window:
    """A closed loop's acknowledged blobs, the latency of each (s), and the CPU seconds the
    run's processes (this one included, encoding workers not) used meanwhile."""

    acked: int
    latencies: list[float]
    cpu_seconds: float


def windows(
    address: str, pids: list[int], seconds: float, tag: str, say: Callable[[str], None]
) -> list[Window]:
    """`closed_loop` with LIGHT_SUBMITTERS, then with SATURATING_SUBMITTERS; the CPU time of
    `pids` (without their children) and of this process is taken over each."""
    found = []
    everyone = [os.getpid(), *pids]
    for submitters in (LIGHT_SUBMITTERS, SATURATING_SUBMITTERS):
        say(f"{tag}: {submitters} submitters for {seconds:.0f} s")
        before = cpu_seconds(everyone, children=False)
        acked, latencies = closed_loop(address, seconds, f"{tag}{submitters}", submitters, say)
        found.append(Window(acked, latencies, cpu_seconds(everyone, children=False) - before))
    return found


def closed_loop(
    address: str, seconds: float, tag: str, submitters: int, say: Callable[[str], None]
) -> tuple[int, list[float]]:
    """`submitters` threads submitting distinct blobs back to back for `seconds`."""
    latencies: list[float] = []
    refused: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def submit(n: int) -> None:
        with grpc.insecure_channel(address) as channel:
            stub = da_pb2_grpc.BlobServiceStub(channel)
            for seq in itertools.count():
                if time.monotonic() >= deadline:
                    return
                data = f"{tag} {n} {seq} ".encode().ljust(BLOB_BYTES, b".")
                started = time.perf_counter()
                try:
                    stub.SubmitBlob(pb.SubmitBlobRequest(namespace=NS, data=data), timeout=10)
                except grpc.RpcError as e:
                    with lock:
                        refused.append(e.code().name)  # type: ignore[attr-defined]
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(submitters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if refused:
        say(f"  {len(refused)} submissions refused: {sorted(set(refused))}")
    return len(latencies), latencies


def trickle(group: ProducerGroup, stop: threading.Event) -> None:
    """Keep a blob pending most of the time, at whichever replica answers."""
    for seq in itertools.count():
        if stop.is_set():
            return
        for i in group.alive():
            try:
                group.submit(i, NS, b"trickle %d" % seq)
                break
            except grpc.RpcError:
                continue
        time.sleep(0.2)


def drain(group: ProducerGroup, leader: int, say: Callable[[str], None]) -> None:
    """Wait until the throughput window's backlog is in blocks."""
    started = time.monotonic()
    while (group.metric(leader, "da_producer_pending_blobs") or 0) > 0:
        time.sleep(0.5)
    say(f"backlog included after {time.monotonic() - started:.0f} s")


def failover_seconds(group: ProducerGroup, kills: int, say: Callable[[str], None]) -> list[float]:
    stop = threading.Event()
    feeder = threading.Thread(target=trickle, args=(group, stop))
    feeder.start()
    took = []
    try:
        for n in range(kills):
            leader = group.wait_leader()
            survivors = [i for i in group.alive() if i != leader]
            group.wait_leader()
            time.sleep(2 * BLOCK_TIME_SECONDS)
            head = max(group.head(i) for i in survivors)
            killed_key = bytes.fromhex(group.keys[leader])
            started = time.monotonic()
            group.proc(leader).kill9()
            while not any(_new_signer(group, i, head, killed_key) for i in survivors):
                time.sleep(0.02)
            took.append(time.monotonic() - started)
            say(f"kill {n + 1}: first new header after {took[-1]:.2f} s")
            group.start(leader)
            while group.head(leader) < head + 1:
                time.sleep(0.1)
    finally:
        stop.set()
        feeder.join(30)
    return took


def _pid(process: DaProcess) -> int:
    assert process.proc is not None
    return process.proc.pid


def _new_signer(group: ProducerGroup, i: int, head: int, killed_key: bytes) -> bool:
    """True once replica `i` serves a header above `head` signed by another than the killed
    leader (blocks the killed leader committed just before its death do not count)."""
    try:
        header = header_from_bytes(group.header(i, 0).header)
    except grpc.RpcError:
        return False
    return header.height > head and header.producer != killed_key


def rows(sizes: Sizes, judged: bool, say: Callable[[str], None]) -> list[BenchRow]:
    with cluster("bench-single") as nodes:
        single = nodes.producer("single", *UNLIMITED)
        single_windows = windows(single.listen, [_pid(single)], sizes.window_seconds, "single", say)
    with cluster("bench-group") as nodes:
        etcd = EtcdCluster(nodes.tmp / "etcd")
        try:
            group = ProducerGroup(
                nodes,
                etcd,
                lease_seconds=LEASE_SECONDS,
                block_time=BLOCK_TIME_SECONDS,
                extra_args=UNLIMITED,
            )
            leader = group.wait_leader()
            pids = [_pid(group.proc(i)) for i in range(group.size)]
            pids += [member.proc.pid for member in etcd.members if member.proc is not None]
            group_windows = windows(group.address(leader), pids, sizes.window_seconds, "group", say)
            drain(group, leader, say)  # kills measure a normal block, not the backlog's
            took = failover_seconds(group, sizes.kills, say)
            group.close()
        finally:
            etcd.close()
    return table(sizes, judged, took, single_windows, group_windows)


def table(
    sizes: Sizes,
    judged: bool,
    took: list[float],
    single: list[Window],
    group: list[Window],
) -> list[BenchRow]:
    bound = LEASE_SECONDS + BLOCK_TIME_SECONDS
    median = statistics.median(took)

    def met(ok: bool) -> bool | None:
        return ok if judged else None

    target = f"<= {FAILOVER_TARGET}x"
    rows = [
        row("failover: min s to a new header", min(took), bound, "-", None),
        row(
            "failover: median s (lease + block)",
            median,
            bound,
            target,
            met(median <= FAILOVER_TARGET * bound),
        ),
        row("failover: max s", max(took), bound, "-", None),
    ]
    for submitters, single_window, group_window in zip(
        (LIGHT_SUBMITTERS, SATURATING_SUBMITTERS), single, group, strict=True
    ):
        single_rate = single_window.acked / sizes.window_seconds
        group_rate = group_window.acked / sizes.window_seconds
        judge = submitters == SATURATING_SUBMITTERS
        rows += [
            row(
                f"group blobs/s vs single, {submitters} submitters",
                group_rate,
                single_rate,
                f">= {THROUGHPUT_TARGET}x" if judge else "-",
                met(group_rate >= THROUGHPUT_TARGET * single_rate) if judge else None,
            ),
            row(
                f"group p50 submit ms vs single, {submitters}",
                1000 * statistics.median(group_window.latencies),
                1000 * statistics.median(single_window.latencies),
                "-",
                None,
            ),
            row(
                f"group intake CPU ms/blob vs single, {submitters}",
                1000 * group_window.cpu_seconds / max(1, group_window.acked),
                1000 * single_window.cpu_seconds / max(1, single_window.acked),
                "-",
                None,
            ),
        ]
    return rows


if __name__ == "__main__":
    run_sized(
        __doc__, "2 kills, 4 s windows, no target judged", rows, Sizes(2, 4.0), Sizes(5, 15.0)
    )
