"""Encoding on long-lived worker processes (issue 6), against bounds measured in the same run.

    python bench/parallel.py [--quick] [--json]

At k = 64 (k = 8 with --quick, where no target is judged), on pools made by
`erasure.parallel.make_encoder_pool`:
- 2 workers against the single-core ckzg bound of bench/encode.py (k x blob_to_kzg_commitment +
  2k x compute_cells_and_kzg_proofs, setup without precomputation): at most 0.50;
- 1 -> 2 workers: at least 1.8 x faster;
- sustained rate (MiB of payload per second, back-to-back squares on a warm 2-worker pool) next
  to ckzg's own rate on the same cores (the same calls with the same settings on the same two
  workers, rows handed out in small batches; no layout, vertical extension or MSM);
- peak RSS of a fresh process encoding with 2 workers, parent + workers (psutil or /proc);
- a dask.distributed LocalCluster (2 worker processes, loopback) gives byte-identical squares.
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encode import encode_bound, full_square_blobs  # noqa: E402
from run import BenchRow, bench_parser, emit, log, row  # noqa: E402

from da.encoder_pool import EncoderPool, make_encoder_pool  # noqa: E402
from erasure import encode_square, kzg  # noqa: E402
from erasure.constants import CELLS_PER_ROW, PAYLOAD_BYTES_PER_CELL  # noqa: E402
from erasure.square import ExtendedSquare  # noqa: E402

WORKERS = 2
TWO_WORKER_TARGET = 0.50
SPEEDUP_TARGET = 1.8
RATE_TARGET = 0.85
RSS_TARGET_MB = 1536
SUSTAINED_SQUARES = 2
CKZG_BATCH_ROWS = 4
MIB = 1 << 20
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def payload_mib(k: int) -> float:
    return k * CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL / MIB


def bare_ckzg(rows: list[bytes], commits: int) -> int:
    """The ckzg calls alone (run in a worker): commitments of the first `commits` rows, cells."""
    for i, r in enumerate(rows):
        if i < commits:
            kzg.commit(r)
        kzg.compute_cells_and_proofs(r)
    return len(rows)


def ckzg_seconds(sq: ExtendedSquare, pool: EncoderPool) -> float:
    """Wall time of the bare ckzg work of `sq` over the pool's workers, mean of a few runs.

    Rows go out in batches of CKZG_BATCH_ROWS handed out on demand, so a worker slowed by a
    neighbour's process does not hold the others back (as in the encoder itself).
    """
    rows = [b"".join(sq.row_cells(r)[:CELLS_PER_ROW]) for r in range(2 * sq.k)]
    parts = [
        (rows[i : i + CKZG_BATCH_ROWS], max(0, min(CKZG_BATCH_ROWS, sq.k - i)))
        for i in range(0, len(rows), CKZG_BATCH_ROWS)
    ]

    def run_all() -> list[int]:
        return [f.result() for f in [pool.submit(bare_ckzg, *p) for p in parts]]

    runs = [timed(run_all)[0] for _ in range(SUSTAINED_SQUARES)]
    return sum(runs) / len(runs)


def warm_up(pool: EncoderPool) -> None:
    """One small encode, so the timed ones find every worker's ckzg code and heap warm."""
    encode_square(full_square_blobs(2 * pool.workers), executor=pool)


def peak_rss_mb(k: int) -> float:
    """Peak RSS (parent + workers) of a fresh process starting 2 workers and encoding once."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(k)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _tree_rss_bytes() -> int:
    try:
        import psutil
    except ImportError:
        return _proc_tree_rss_bytes()
    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass  # a process that just exited
    return total


def _proc_tree_rss_bytes() -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(stat[1])
            rss[int(entry.name)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(pid, 0) for pid in tree)


def rss_child(k: int) -> None:
    """Run in the child: sample the process tree's RSS while starting 2 workers and encoding."""
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _tree_rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    pool = make_encoder_pool(WORKERS)
    try:
        encode_square(full_square_blobs(k), max_rows=max(k, 64), executor=pool)
        peak[0] = max(peak[0], _tree_rss_bytes())
    finally:
        stop.set()
        sampler.join()
        pool.shutdown()
    print(peak[0] / MIB)


def dask_identical(k: int, pool: EncoderPool) -> bool:
    """Whether a 2-worker LocalCluster encodes the same square as the local pool."""
    import logging

    from distributed import LocalCluster

    blobs = full_square_blobs(k)
    local = encode_square(blobs, max_rows=max(k, 64), executor=pool)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        dask_pool = make_encoder_pool(2, dask_scheduler=cluster.scheduler_address)
        try:
            return encode_square(blobs, max_rows=max(k, 64), executor=dask_pool) == local
        finally:
            dask_pool.shutdown()


def rows(quick: bool, *, as_json: bool = False) -> list[BenchRow]:
    """Every figure of this benchmark (targets judged at k = 64 only)."""
    k, judged = (8, False) if quick else (64, True)
    blobs = full_square_blobs(k)
    pools = {n: make_encoder_pool(n) for n in (1, WORKERS)}  # started, setups loaded
    try:
        for pool in pools.values():
            warm_up(pool)
        t1, sq1 = timed(lambda: encode_square(blobs, max_rows=max(k, 64), executor=pools[1]))
        pools.pop(1).shutdown()
        log(f"measured encode k={k} 1 worker: {t1:.2f} s", as_json=as_json)
        runs = []
        for _ in range(SUSTAINED_SQUARES):
            seconds, sq2 = timed(lambda: encode_square(blobs, max_rows=64, executor=pools[WORKERS]))
            if sq2 != sq1:
                raise RuntimeError("1 and 2 workers encoded different squares")
            runs.append(seconds)
        t2 = sum(runs) / len(runs)
        log(f"measured encode k={k} {WORKERS} workers: {runs}", as_json=as_json)
        ckzg_2 = ckzg_seconds(sq1, pools[WORKERS])
        log(f"measured bare ckzg on {WORKERS} workers: {ckzg_2:.2f} s (mean)", as_json=as_json)
        same = dask_identical(2 if quick else 8, pools[WORKERS])
        log(f"dask LocalCluster byte-identical: {same}", as_json=as_json)
    finally:
        for pool in pools.values():
            pool.shutdown()
    bound = encode_bound(sq1, kzg.load_settings(precompute=0))
    log(f"measured single-core bare ckzg bound: {bound:.2f} s", as_json=as_json)
    rss = peak_rss_mb(k)
    log(f"measured peak RSS: {rss:.0f} MiB", as_json=as_json)

    def met(ok: bool) -> bool | None:
        return ok if judged else None

    mib = payload_mib(k)
    return [
        row(f"encode k={k} 1 worker (s)", t1, bound, "-", None),
        row(f"encode k={k} {WORKERS} workers (s)", t2, bound, f"<= {TWO_WORKER_TARGET}",
            met(t2 / bound <= TWO_WORKER_TARGET)),
        row(f"1->{WORKERS} workers: time vs 1 worker (s)", t2, t1,
            f"<= {1 / SPEEDUP_TARGET:.3f}", met(t1 / t2 >= SPEEDUP_TARGET)),
        row(f"sustained k={k} {WORKERS} workers (MiB/s)", mib / t2, mib / ckzg_2,
            f">= {RATE_TARGET}", met(ckzg_2 / t2 >= RATE_TARGET)),
        row(f"peak RSS k={k} {WORKERS} workers (MiB)", rss, None, f"< {RSS_TARGET_MB}",
            met(rss < RSS_TARGET_MB)),
        row(f"dask k={2 if quick else 8} == local pool (1=yes)", float(same), None, "yes",
            same),
    ]  # fmt: skip


def main() -> None:
    parser = bench_parser(__doc__, "k = 8, no target judged")
    parser.add_argument("--rss-child", type=int, metavar="K", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    emit(rows(args.quick, as_json=args.json), as_json=args.json)


if __name__ == "__main__":
    main()
