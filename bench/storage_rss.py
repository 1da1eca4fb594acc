"""A storage node following and serving 300 blocks keeps a flat RSS (issue 6).

    python bench/storage_rss.py [--quick] [--json]

Starts a real producer (`--max-rows 4 --block-time 1`, one encoding worker, so the storage node
keeps a core) and a real storage node following it with an attestation key and the default
retention (1000 blocks: all of them stay stored, nothing is pruned; checked at the end). The
producer is fed one blob per block, of random size for k = 1, 2 or 4. A client calls the
storage node, about LOAD_RPS times a second, alternately GetSamples (16 random cells) and GetRow
on one of its newest RECENT heights. The storage node's RSS (with its verification worker;
psutil, every 0.2 s) is sampled throughout. Warm-up is the first WARMUP blocks stored. Figure:
the highest RSS after warm-up against the highest in the last WARM_WINDOW_SECONDS of warm-up
(peak against peak, so a block being ingested at either moment does not decide it); target
at most GROWTH_TARGET. Also shown, without a target: the peak in the second half of the
measured blocks against the first half (a leak keeps growing, a cache filling up levels off).
`--quick`: 30 blocks, warm-up 10, no target judged.
"""

import asyncio
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from procs import DaProcess, RssSampler, cluster, keygen  # noqa: E402
from run import BenchRow, row, run_sized  # noqa: E402  (bench/run.py: the table convention)

from da.api.client import open_channel  # noqa: E402
from da.header import header_from_bytes  # noqa: E402
from da.sampling import draw_coordinates  # noqa: E402
from da.v1 import da_pb2 as pb  # noqa: E402
from da.v1 import da_pb2_grpc  # noqa: E402
from erasure.constants import CELLS_PER_ROW, PAYLOAD_BYTES_PER_CELL  # noqa: E402

MAX_ROWS = 4
BLOCK_TIME_SECONDS = 1.0
GROWTH_TARGET = 1.10
WARM_WINDOW_SECONDS = 10.0
LOAD_RPS = 20.0
RECENT = 5
SAMPLES_PER_REQUEST = 16
SECONDS_PER_BLOCK_LIMIT = 5.0  # give up when the run is this slow
NAMESPACE = b"bench-storage"
MIB = 1 << 20


@dataclass(frozen=True)
class Sizes:
    blocks: int
    warmup: int


FULL = Sizes(blocks=300, warmup=50)
QUICK = Sizes(blocks=30, warmup=10)


@dataclass
class Seen:
    """Heights the storage node announced (with their k), when, and how the load fared."""

    k: dict[int, int] = field(default_factory=dict)
    stored_at: dict[int, float] = field(default_factory=dict)
    requests: int = 0
    failed: int = 0

    def reached(self, height: int) -> float:
        """When the storage node first announced `height` or above (blocks may land out of
        order, and its header stream skips a height stored after a higher one)."""
        return min(t for h, t in self.stored_at.items() if h >= height)


def blob_bytes(rng: random.Random) -> int:
    """A size whose square has k = 1, 2 or 4 rows (k chosen at random)."""
    k = rng.choice([1, 2, 4])
    fewest = k * CELLS_PER_ROW // 2 + 1 if k > 1 else 1
    cells = rng.randint(fewest, k * CELLS_PER_ROW)
    return cells * PAYLOAD_BYTES_PER_CELL - rng.randrange(PAYLOAD_BYTES_PER_CELL)


async def feed(producer: str) -> None:
    """One new blob as soon as each block is published (the first one right away)."""
    rng = random.Random(3)
    async with open_channel(producer) as channel:
        blobs = da_pb2_grpc.BlobServiceStub(channel)
        headers = da_pb2_grpc.HeaderServiceStub(channel)

        async def submit() -> None:
            data = rng.randbytes(blob_bytes(rng))
            await blobs.SubmitBlob(pb.SubmitBlobRequest(namespace=NAMESPACE, data=data), timeout=30)

        await submit()
        async for _ in headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1)):
            await submit()


async def follow(
    storage: str, sizes: Sizes, seen: Seen, rss: RssSampler, say: Callable[[str], None]
) -> None:
    """Record each height the storage node stores until it holds `sizes.blocks`."""
    async with open_channel(storage) as channel:
        headers = da_pb2_grpc.HeaderServiceStub(channel)
        async for signed in headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1)):
            header = header_from_bytes(signed.header)
            seen.k[header.height] = header.k
            seen.stored_at[header.height] = time.monotonic()
            if header.height % 10 == 0:
                say(
                    f"storage node holds height {header.height}: RSS {rss.latest_mib():.0f} "
                    f"MiB, {seen.requests} requests ({seen.failed} failed)"
                )
            if header.height >= sizes.blocks:
                return


def request_for(rng: random.Random, seen: Seen, n: int) -> tuple[str, Any]:
    """The n-th request: GetSamples or GetRow on one of the newest RECENT stored heights."""
    newest = sorted(seen.k)[-RECENT:]
    height = rng.choice(newest)
    k = seen.k[height]
    if n % 2:
        return "GetRow", pb.GetRowRequest(height=height, row=rng.randrange(2 * k))
    coords = [  # distinct, as the protocol requires (PROTOCOL.md §11)
        pb.CellCoord(row=ref.row, col=ref.col)
        for ref in draw_coordinates(k, SAMPLES_PER_REQUEST, rng)
    ]
    return "GetSamples", pb.GetSamplesRequest(height=height, coords=coords)


async def serve_load(storage: str, seen: Seen) -> None:
    """About LOAD_RPS calls a second, one after another, until cancelled."""
    rng = random.Random(4)
    start = time.monotonic()
    async with open_channel(storage) as channel:
        shares = da_pb2_grpc.ShareServiceStub(channel)
        n = 0
        while True:
            await asyncio.sleep(max(0.0, start + n / LOAD_RPS - time.monotonic()))
            n += 1
            if not seen.k:
                continue
            method, request = request_for(rng, seen, n)
            try:
                await getattr(shares, method)(request, timeout=10)
                seen.requests += 1
            except grpc.aio.AioRpcError:
                seen.failed += 1


async def run_load(
    producer: DaProcess,
    storage: DaProcess,
    sizes: Sizes,
    rss: RssSampler,
    say: Callable[[str], None],
) -> Seen:
    seen = Seen()
    async with asyncio.TaskGroup() as group:  # a failing feeder or load ends the run at once
        tasks = [
            group.create_task(feed(producer.listen)),
            group.create_task(serve_load(storage.listen, seen)),
        ]
        await asyncio.wait_for(
            follow(storage.listen, sizes, seen, rss, say),
            120 + SECONDS_PER_BLOCK_LIMIT * sizes.blocks,
        )
        for task in tasks:
            task.cancel()
    return seen


async def kept_blocks(storage: str, blocks: int) -> int:
    """How many of heights 1..blocks the storage node still serves a header for."""
    kept = 0
    async with open_channel(storage) as channel:
        headers = da_pb2_grpc.HeaderServiceStub(channel)
        for height in range(1, blocks + 1):
            try:
                await headers.GetHeader(pb.GetHeaderRequest(height=height), timeout=10)
                kept += 1
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
    return kept


def rows(sizes: Sizes, judged: bool, say: Callable[[str], None]) -> list[BenchRow]:
    with cluster() as nodes:
        key_file = nodes.tmp / "storage.key"
        keygen(key_file)
        producer = nodes.producer(
            "producer", "--max-rows", str(MAX_ROWS), "--block-time", str(BLOCK_TIME_SECONDS)
        )
        storage = nodes.storage_node("storage", producer, "--key-file", str(key_file))
        if storage.proc is None:
            raise RuntimeError("the storage node did not start")
        start = time.monotonic()
        with RssSampler(storage.proc.pid) as rss:
            seen = asyncio.run(run_load(producer, storage, sizes, rss, say))
        seconds = time.monotonic() - start
        kept = asyncio.run(kept_blocks(storage.listen, sizes.blocks))
        if not storage.alive():
            raise RuntimeError(f"the storage node exited:\n{storage.log()}")
    warm_end, end = seen.reached(sizes.warmup), seen.reached(sizes.blocks)
    warm = rss.peak_mib(warm_end - WARM_WINDOW_SECONDS, warm_end)
    after = rss.peak_mib(warm_end, end)
    # A leak keeps growing; caches filling up (the row cache, RocksDB's memtable) level off.
    mid = seen.reached((sizes.warmup + sizes.blocks) // 2)
    early, late = rss.peak_mib(warm_end, mid), rss.peak_mib(mid, end)
    served = seen.requests / (end - min(seen.stored_at.values()))
    say(
        f"{sizes.blocks} blocks in {seconds:.0f} s; storage RSS {warm:.0f} MiB at warm-up, "
        f"{after:.0f} MiB peak after; {seen.requests} requests ({seen.failed} failed); "
        f"{kept}/{sizes.blocks} blocks kept"
    )

    def met(ok: bool) -> bool | None:
        return ok if judged else None

    n = sizes.blocks
    return [
        row(f"storage RSS {n} blocks vs warm-up (MiB)", after, warm, f"<= {GROWTH_TARGET}",
            met(after / warm <= GROWTH_TARGET)),
        row("storage RSS late vs early after warm-up", late, early, "-", None),
        row(f"storage blocks kept of {n}", float(kept), n, "all", met(kept == n)),
        row("storage GetSamples/GetRow served (req/s)", served, None, "-", None),
    ]  # fmt: skip


def main() -> None:
    run_sized(__doc__, "30 blocks, no target judged", rows, QUICK, FULL)


if __name__ == "__main__":
    main()
