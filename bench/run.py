"""Run every benchmark and print one table (`make bench`).

    python bench/run.py [--quick]

Convention for a benchmark script `bench/<name>.py`: it accepts `--quick` (a fast smoke run) and
`--json`. With `--json` it writes its progress to stderr and, as the last line of stdout, one JSON
list of rows `{"figure": str, "value": float, "bound": float | null, "ratio": float | null,
"target": str, "met": bool | null}`: `bound` is measured in the same run on the same machine,
`ratio = value / bound`, `met` is null where no target applies (e.g. at quick sizes). Build the
rows with `BenchRow` and print them with `emit` (scripts run from bench/ can `import run`).
A script exits 0 whenever it measured (a missed target is a row with `met` false, not an exit
status); a script that exits non-zero or prints no rows shows as a FAILED row in the table, after
any rows it printed. Each script runs in its own process, one after another, so none disturbs
another's timings.
Scripts that start real `da` processes (producer.py, storage_rss.py) do it through
bench/procs.py, which also samples a process tree's RSS.

    encode.py       codec: encode and recovery against the bare ckzg calls
    repair.py       repair proportional to loss: recover_square against the ckzg work the
                    lost cells need (one row at k = 32, 64; a quarter of the columns at k = 32)
    header.py       consistency check and commitment extension at k = 64..512 against MSMs
    serve.py        storage node: GetSamples throughput and block ingest
    light.py        light client: header to verdict latency, CPU per header (k = 1 over
                    the network; k = 64 and 512 in-process)
    parallel.py     encoding workers: 1 -> 2 workers, sustained rate, peak RSS, dask
    producer.py     a real producer at k = 64 and 128, 2 workers: payload MiB/s at its block
                    time next to ckzg's rate on the same cores, backlog, interval, peak RSS
    storage_rss.py  a real storage node following and serving 300 blocks: RSS stays flat
    reconstruct.py  collective reconstruction: light clients needed to rebuild a block at
                    k = 1..8 (real gathering and recovery, no network), one k = 8 rebuild's
                    wall time against in-process recovery of the same cells
    failover.py     a 3-replica producer group on a real etcd: leader kill to the next header
                    against lease + block time; group vs single-producer submissions
"""

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

S = TypeVar("S")  # a script's sizes

BENCH_DIR = Path(__file__).resolve().parent
TIMEOUT_SECONDS = 1800  # per benchmark script: a hung one must not hang `make bench`
QUICK_TIMEOUT_SECONDS = 600
BENCHES = (
    ("codec", "encode.py"),
    ("repair", "repair.py"),
    ("header checks", "header.py"),
    ("serving", "serve.py"),
    ("light client", "light.py"),
    ("encoding workers", "parallel.py"),
    ("producer", "producer.py"),
    ("storage memory", "storage_rss.py"),
    ("reconstruction", "reconstruct.py"),
    ("producer group", "failover.py"),
)


@dataclass(frozen=True)
class BenchRow:
    """One figure of a benchmark against its bound measured in the same run."""

    figure: str
    value: float
    bound: float | None
    ratio: float | None
    target: str
    met: bool | None


def row(figure: str, value: float, bound: float | None, target: str, met: bool | None) -> BenchRow:
    """A BenchRow with its ratio computed (None without a bound)."""
    ratio = value / bound if bound else None
    return BenchRow(figure, value, bound, ratio, target, met)


def emit(rows: list[BenchRow], *, as_json: bool) -> None:
    """Print the rows: as the one JSON line of the convention, or as a table for people."""
    if as_json:
        print(json.dumps([asdict(r) for r in rows]), flush=True)
    else:
        print_table([("", r) for r in rows])


def bench_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The convention's command line, `--quick` (described by `quick_help`) and `--json`, for a
    script to add its own flags to."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", action="store_true", help="one JSON line of rows (bench/run.py)")
    return parser


def parse_args(doc: str, quick_help: str) -> argparse.Namespace:
    """`bench_parser(doc, quick_help).parse_args()`: for scripts without flags of their own."""
    return bench_parser(doc, quick_help).parse_args()


def run_sized(
    doc: str,
    quick_help: str,
    rows: Callable[[S, bool, Callable[[str], None]], list[BenchRow]],
    quick: S,
    full: S,
) -> None:
    """The `main` of a script whose table is `rows(sizes, judged, say)`: `quick` sizes (targets
    not judged) under `--quick`, else `full`; progress through `say`, rows emitted."""
    args = parse_args(doc, quick_help)
    say = lambda message: log(message, as_json=args.json)  # noqa: E731
    emit(rows(quick if args.quick else full, not args.quick, say), as_json=args.json)


def log(message: str, *, as_json: bool) -> None:
    """Progress: to stderr under --json (stdout carries the JSON line), else to stdout."""
    print(message, file=sys.stderr if as_json else sys.stdout, flush=True)


def _fmt(x: float | None, width: int) -> str:
    return f"{x:{width}.2f}" if x is not None else f"{'-':>{width}}"


def print_table(rows: list[tuple[str, BenchRow]]) -> None:
    """One table: benchmark, figure, value, bound, ratio, target, met."""
    print(f"{'bench':<17}{'figure':<40}{'value':>10}{'bound':>10}{'ratio':>8}  {'target':<12}met")
    for bench, r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(
            f"{bench:<17}{r.figure:<40}{_fmt(r.value, 10)}{_fmt(r.bound, 10)}"
            f"{_fmt(r.ratio, 8)}  {r.target:<12}{met}"
        )


class BenchFailed(RuntimeError):
    """A benchmark script failed; `rows` are whatever rows it still printed."""

    def __init__(self, reason: str, rows: list[BenchRow] | None = None) -> None:
        super().__init__(reason)
        self.rows = rows or []


def run_bench(script: Path, quick: bool) -> list[BenchRow]:
    """Run one benchmark script with --json; raises BenchFailed if it fails (with the rows it
    printed before exiting non-zero, if any)."""
    args = [sys.executable, str(script), "--json", *(["--quick"] if quick else [])]
    timeout = QUICK_TIMEOUT_SECONDS if quick else TIMEOUT_SECONDS
    try:  # stderr is not captured: the script's progress shows live
        done = subprocess.run(args, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BenchFailed(f"no result within {timeout} s") from e
    if done.returncode == 2:  # argparse's usage error
        raise BenchFailed("exit status 2: does it accept --json and --quick (see bench/run.py)?")
    lines = done.stdout.strip().splitlines()
    try:
        rows = [BenchRow(**item) for item in json.loads(lines[-1])] if lines else None
    except (ValueError, TypeError) as e:
        if done.returncode == 0:
            raise BenchFailed(f"no JSON row list on its last stdout line ({e})") from e
        rows = None
    if done.returncode != 0:
        raise BenchFailed(f"exit status {done.returncode}", rows)
    if rows is None:
        raise BenchFailed("no output")
    return rows


def failed_row(filename: str, reason: str) -> BenchRow:
    """The row that stands in the table for a script that failed: never a silent gap."""
    return BenchRow(f"FAILED {filename}: {reason}"[:39], math.nan, None, None, "runs", False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run of every benchmark")
    args = parser.parse_args()
    table: list[tuple[str, BenchRow]] = []
    notes: list[str] = []
    for name, filename in BENCHES:
        script = BENCH_DIR / filename
        if not script.exists():
            notes.append(f"{name}: bench/{filename} does not exist yet, skipped")
            continue
        start = time.perf_counter()
        print(f"== {name} (bench/{filename}) ==", file=sys.stderr, flush=True)
        try:
            table += [(name, r) for r in run_bench(script, args.quick)]
        except BenchFailed as e:
            table += [(name, r) for r in e.rows]  # what it measured before failing still shows
            table.append((name, failed_row(filename, str(e))))
            notes.append(f"{name}: bench/{filename} failed: {e}")
        print(f"== {name}: {time.perf_counter() - start:.0f} s ==", file=sys.stderr, flush=True)
    print()
    print_table(table)
    judged = [r for _, r in table if r.met is not None]
    quick = " (quick run: targets are judged at full sizes only)" if args.quick else ""
    print(f"\ntargets met: {sum(bool(r.met) for r in judged)}/{len(judged)}{quick}")
    for note in notes:
        print(f"note: {note}")
    return 1 if any("failed" in n for n in notes) else 0


if __name__ == "__main__":
    sys.exit(main())
