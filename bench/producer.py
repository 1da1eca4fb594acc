"""A real producer under sustained load of full k = 64 and k = 128 blocks (issues 6, 13), against
ckzg's own rate measured in the same run on the same cores.

    python bench/producer.py [--quick] [--json] [--sizes 64,128]

1. Bound: ckzg's own payload rate on 2 cores = payload bytes of a full k-row ODS / wall time of
   `compute_cells_and_kzg_proofs` on its 2k extended rows plus `blob_to_kzg_commitment` on its
   k original rows (the ckzg work no encoder avoids; the same bound as bench/parallel.py's
   sustained rate), spread over a 2-worker `make_encoder_pool` (the producer's own pool and
   ckzg settings). Measured first, while nothing else of ours runs.
2. A real `da producer --workers 2 --max-rows k` with block time = that ckzg time / DEMAND: a
   full block per block time asks for DEMAND of ckzg's rate. Blobs of k * 8 cells (8 fill the
   ODS exactly; ~1 MB at k = 64) are submitted over gRPC, open loop, 8 per block time evenly
   spaced. Blocks arrive on a SubscribeHeaders stream; at each one the producer's
   `da_producer_pending_blobs` is read. After 2 warm-up blocks, 10 more are measured:
   - payload rate: blob bytes in the measured headers / their header-time span, next to
     ckzg's: at least RATE_TARGET;
   - backlog: pending blobs just after the last block at most those just after the warm-up
     (+ BACKLOG_SLACK_BLOBS);
   - mean block interval at most INTERVAL_TARGET x the block time;
   - the producer's own mean encode time (`da_block_encode_seconds`) next to ckzg's (no target);
   - peak RSS of the producer and its workers (psutil, every 0.2 s): under RSS_TARGET_MIB.
Each k of `--sizes` is measured in turn (its bound, then its own producer); k = 128 measures 6
blocks after its warm-up (a block there takes ~45 s on 2 cores).
`--quick`: k = 4, 1 + 3 blocks, no target judged (small blocks are mostly overhead).
"""

import asyncio
import itertools
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parallel import bare_ckzg  # noqa: E402  (bench/parallel.py: the bare ckzg calls)
from procs import Cluster, DaProcess, RssSampler, cluster, metric  # noqa: E402
from run import BenchRow, bench_parser, emit, log, row  # noqa: E402  (bench/run.py: the table convention)

from da.api.client import open_channel  # noqa: E402
from da.encoder_pool import make_encoder_pool  # noqa: E402
from da.header import header_from_bytes  # noqa: E402
from da.v1 import da_pb2 as pb  # noqa: E402
from da.v1 import da_pb2_grpc  # noqa: E402
from erasure.constants import (  # noqa: E402
    BYTES_PER_FIELD_ELEMENT,
    CELLS_PER_ROW,
    FIELD_ELEMENTS_PER_BLOB,
    PAYLOAD_BYTES_PER_CELL,
)
from erasure.parallel import extend_columns  # noqa: E402

WORKERS = 2
BLOBS_PER_BLOCK = 8
# Demand 0.8 of ckzg's rate and require 0.75 of it: the ckzg calls are ~99% of an encode
# (erasure/parallel.py); the rest of a block (layout, vertical extension, the commitment MSM,
# signing, writing the 2k rows, taking in the blobs over gRPC, the event loop sharing the 2 cores
# with the workers) must fit in the remaining fifth of the block time. The payload rate can be
# at most the demand (a full square per block time), so demand sits a little above the target:
# a block that slips by a few percent is not a miss, one that slips more is.
DEMAND = 0.8
RATE_TARGET = 0.75
INTERVAL_TARGET = 1.05
BACKLOG_SLACK_BLOBS = 1  # a blob that arrives during the encode is pending at either reading
RSS_TARGET_MIB = 1536  # 1.5 GiB
CKZG_BATCH_ROWS = 4  # handed out on demand, as in bench/parallel.py
MIB = 1 << 20
NAMESPACE = b"bench-producer"


@dataclass(frozen=True)
class Sizes:
    k: int
    warmup: int
    blocks: int
    ckzg_runs: int

    @property
    def blob_bytes(self) -> int:
        return self.k * CELLS_PER_ROW // BLOBS_PER_BLOCK * PAYLOAD_BYTES_PER_CELL

    @property
    def ods_payload_bytes(self) -> int:
        return self.k * CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL


FULL = {
    64: Sizes(k=64, warmup=2, blocks=10, ckzg_runs=2),
    128: Sizes(k=128, warmup=2, blocks=6, ckzg_runs=1),
}
QUICK = Sizes(k=4, warmup=1, blocks=3, ckzg_runs=1)


# --- the bound: ckzg alone on the same two cores ----------------------------------------------


def extended_rows(k: int, seed: int = 5) -> list[bytes]:
    """2k rows as the producer extends them: k packed payload rows, then their k parity rows."""
    rng = random.Random(seed)
    original = [
        b"".join(
            b"\x00" + rng.randbytes(BYTES_PER_FIELD_ELEMENT - 1)
            for _ in range(FIELD_ELEMENTS_PER_BLOB)
        )
        for _ in range(k)
    ]
    return original + extend_columns(k, original)


def ckzg_seconds(k: int, runs: int) -> float:
    """Mean wall time, over 2 workers, of the ckzg calls a k-row block cannot avoid:
    compute_cells_and_kzg_proofs on its 2k extended rows and blob_to_kzg_commitment on its k
    original rows (as bench/parallel.py's sustained-rate bound)."""
    rows = extended_rows(k)
    parts = [
        (rows[i : i + CKZG_BATCH_ROWS], max(0, min(CKZG_BATCH_ROWS, k - i)))
        for i in range(0, len(rows), CKZG_BATCH_ROWS)
    ]
    pool = make_encoder_pool(WORKERS)
    try:

        def run_all() -> None:
            for future in [pool.submit(bare_ckzg, *part) for part in parts]:
                future.result()

        run_all()  # warm: every worker has run ckzg once before the timed runs
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            run_all()
            times.append(time.perf_counter() - start)
    finally:
        pool.shutdown()
    return sum(times) / len(times)


# --- the load and the observations ----------------------------------------------------------


@dataclass
class Observed:
    """What the run saw: per block (in order) its height, header time, payload, pending after."""

    heights: list[int] = field(default_factory=list)
    time_ms: list[int] = field(default_factory=list)
    payload: list[int] = field(default_factory=list)
    pending_after: list[int] = field(default_factory=list)
    encode_sum: list[float] = field(default_factory=list)
    encode_count: list[float] = field(default_factory=list)
    submitted: int = 0
    refused: int = 0


async def submit_open_loop(
    stub: da_pb2_grpc.BlobServiceStub, sizes: Sizes, block_time: float, seen: Observed
) -> None:
    """BLOBS_PER_BLOCK distinct blobs per block time, evenly spaced, whatever the producer does."""
    base = random.Random(9).randbytes(sizes.blob_bytes)
    period = block_time / BLOBS_PER_BLOCK
    start = time.monotonic()
    for i in itertools.count():
        await asyncio.sleep(max(0.0, start + i * period - time.monotonic()))
        data = i.to_bytes(8, "big") + base[8:]
        try:
            await stub.SubmitBlob(pb.SubmitBlobRequest(namespace=NAMESPACE, data=data), timeout=30)
            seen.submitted += 1
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # the mempool is full
                raise
            seen.refused += 1


async def watch_blocks(
    headers: da_pb2_grpc.HeaderServiceStub,
    metrics_port: int,
    want: int,
    seen: Observed,
    say: Callable[[str], None],
) -> None:
    """Record `want` blocks as they are published, reading the producer's metrics at each."""
    stream = headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1))
    async for signed in stream:
        header = header_from_bytes(signed.header)
        pending, encode_sum, encode_count = await asyncio.to_thread(read_metrics, metrics_port)
        seen.heights.append(header.height)
        seen.time_ms.append(header.time_ms)
        seen.payload.append(sum(entry.length for entry in header.blobs))
        seen.pending_after.append(int(pending))
        seen.encode_sum.append(encode_sum)
        seen.encode_count.append(encode_count)
        say(
            f"block {header.height}: k={header.k}, {len(header.blobs)} blobs, "
            f"{pending:.0f} pending, {seen.submitted} submitted, {seen.refused} refused"
        )
        if len(seen.heights) >= want:
            stream.cancel()
            return


def read_metrics(port: int) -> tuple[float, float, float]:
    """(pending blobs, encode seconds sum, encode count) from the producer's /metrics."""
    names = (
        "da_producer_pending_blobs",
        "da_block_encode_seconds_sum",
        "da_block_encode_seconds_count",
    )
    values = [metric(port, name) for name in names]
    if any(v is None for v in values):
        raise RuntimeError(f"producer metrics lack one of {names}")
    return values[0] or 0.0, values[1] or 0.0, values[2] or 0.0


async def load(
    producer: DaProcess, sizes: Sizes, block_time: float, say: Callable[[str], None]
) -> Observed:
    """Feed the producer and watch WARMUP + BLOCKS blocks (or fail after a generous timeout)."""
    seen = Observed()
    want = sizes.warmup + sizes.blocks
    timeout = 120 + 3 * want * block_time
    async with open_channel(producer.listen) as channel:
        blobs = da_pb2_grpc.BlobServiceStub(channel)
        headers = da_pb2_grpc.HeaderServiceStub(channel)
        async with asyncio.TaskGroup() as tasks:  # a failing feeder ends the run at once
            feeder = tasks.create_task(submit_open_loop(blobs, sizes, block_time, seen))
            await asyncio.wait_for(
                watch_blocks(headers, producer.metrics_port, want, seen, say), timeout
            )
            feeder.cancel()
    return seen


def start_producer(nodes: Cluster, sizes: Sizes, block_time: float) -> DaProcess:
    return nodes.producer(
        "producer",
        "--workers",
        str(WORKERS),
        "--max-rows",
        str(sizes.k),
        "--block-time",
        f"{block_time:.2f}",
    )


# --- figures ------------------------------------------------------------------------------


def rows(sizes: Sizes, judged: bool, say: Callable[[str], None]) -> list[BenchRow]:
    k = sizes.k
    ckzg = ckzg_seconds(k, sizes.ckzg_runs)
    ckzg_rate = sizes.ods_payload_bytes / ckzg / MIB
    block_time = math.ceil(ckzg / DEMAND * 100) / 100
    say(
        f"measured ckzg on {WORKERS} workers: {ckzg:.2f} s for k={k} "
        f"({ckzg_rate:.2f} MiB/s); block time {block_time:.2f} s"
    )
    with cluster() as nodes:
        producer = start_producer(nodes, sizes, block_time)
        if producer.proc is None:
            raise RuntimeError("the producer did not start")
        with RssSampler(producer.proc.pid) as rss:
            seen = asyncio.run(load(producer, sizes, block_time, say))
        if not producer.alive():
            raise RuntimeError(f"the producer exited:\n{producer.log()}")
    w = sizes.warmup - 1  # index of the last warm-up block
    span = (seen.time_ms[-1] - seen.time_ms[w]) / 1000
    rate = sum(seen.payload[w + 1 :]) / span / MIB
    interval = span / sizes.blocks
    encodes = seen.encode_count[-1] - seen.encode_count[w]
    encode = (seen.encode_sum[-1] - seen.encode_sum[w]) / encodes
    pending_warm, pending_end = seen.pending_after[w], seen.pending_after[-1]
    peak = rss.peak_mib()
    say(
        f"payload {rate:.2f} MiB/s over {sizes.blocks} blocks, mean interval {interval:.2f} s, "
        f"encode {encode:.2f} s, pending {pending_warm} -> {pending_end}, "
        f"{seen.refused} refused, peak RSS {peak:.0f} MiB"
    )

    def met(ok: bool) -> bool | None:
        return ok if judged else None

    backlog_ok = pending_end <= pending_warm + BACKLOG_SLACK_BLOBS and seen.refused == 0
    return [
        row(f"producer k={k} payload rate (MiB/s)", rate, ckzg_rate, f">= {RATE_TARGET}",
            met(rate / ckzg_rate >= RATE_TARGET)),
        row(f"producer k={k} pending after last block", float(pending_end), None,
            f"<= {pending_warm + BACKLOG_SLACK_BLOBS}", met(backlog_ok)),
        row(f"producer k={k} block interval (s)", interval, block_time,
            f"<= {INTERVAL_TARGET}", met(interval / block_time <= INTERVAL_TARGET)),
        row(f"producer k={k} encode in node (s)", encode, ckzg, "-", None),
        row(f"peak RSS producer k={k} {WORKERS} workers (MiB)", peak, None,
            f"< {RSS_TARGET_MIB}", met(peak < RSS_TARGET_MIB)),
    ]  # fmt: skip


def main() -> None:
    parser = bench_parser(__doc__, "k = 4, a few blocks, no target")
    parser.add_argument(
        "--sizes", default=",".join(map(str, FULL)), help=f"comma-separated k, of {sorted(FULL)}"
    )
    args = parser.parse_args()
    say = lambda message: log(message, as_json=args.json)  # noqa: E731
    chosen = [QUICK] if args.quick else [FULL[int(k)] for k in args.sizes.split(",")]
    emit([r for sizes in chosen for r in rows(sizes, not args.quick, say)], as_json=args.json)


if __name__ == "__main__":
    main()
