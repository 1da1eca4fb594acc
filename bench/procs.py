"""Processes for benchmarks: real `da` nodes on loopback, a benchmark's own child server, and the
memory and CPU time of a process tree.

Starting `da` processes lives in one place, tests/integration/harness.py (`Cluster`: keys via
`da keygen`, a data directory and log file per process, waiting for gRPC health SERVING); this
module wraps it for benchmarks instead of copying it. Memory is the RSS of a process plus all its
descendants (the producer's encoding workers, the storage node's verification worker), summed:
pages shared between a parent and its forked children count once per process, so the figure
errs high, never low.
"""

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import (  # noqa: E402
    Cluster,
    DaProcess,
    free_port,
    keygen,
    metric_value,
    scrape,
)

__all__ = [
    "Cluster",
    "DaProcess",
    "RssSampler",
    "cluster",
    "cpu_seconds",
    "free_port",
    "keygen",
    "metric",
    "python_child",
]

RSS_INTERVAL_SECONDS = 0.2
MIB = 1 << 20


@contextmanager
def cluster(chain_id: str = "bench") -> Iterator[Cluster]:
    """A `Cluster` in a temporary directory; its processes are stopped (and, if the block
    raised, their logs printed to stderr) on exit."""
    with tempfile.TemporaryDirectory(prefix="da-bench-") as tmp:
        nodes = Cluster(Path(tmp), chain_id)
        try:
            yield nodes
        except BaseException:
            print(nodes.logs(), file=sys.stderr, flush=True)
            raise
        finally:
            nodes.close()


def metric(port: int, name: str) -> float | None:
    """One sample of a process's Prometheus endpoint on loopback (None if absent)."""
    return metric_value(scrape(port), name)


@contextmanager
def python_child(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """`python args...` as a child process, terminated on exit."""
    proc = subprocess.Popen([sys.executable, *args])
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _family(pid: int, *, children: bool = True) -> list[psutil.Process]:
    """`pid` and (`children`) all its descendants; empty once it has exited."""
    try:
        root = psutil.Process(pid)
        return [root, *(root.children(recursive=True) if children else [])]
    except psutil.Error:
        return []


def tree_rss_bytes(pid: int) -> int:
    """RSS of `pid` and all its descendants (0 once it has exited)."""
    total = 0
    for proc in _family(pid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass  # a worker that just exited
    return total


def cpu_seconds(pids: Sequence[int], *, children: bool = True) -> float:
    """User + system CPU seconds used so far by `pids` and (`children`) all their descendants
    (processes that already exited count for nothing: take differences over processes alive
    throughout)."""
    total = 0.0
    for proc in (proc for pid in pids for proc in _family(pid, children=children)):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class RssSampler:
    """Samples `tree_rss_bytes(pid)` every RSS_INTERVAL_SECONDS in a daemon thread.

    `samples` holds (time.monotonic(), bytes) pairs; use as a context manager.
    """

    def __init__(self, pid: int, interval: float = RSS_INTERVAL_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), tree_rss_bytes(self.pid)))
            if self._stop.wait(self.interval):
                return

    def latest_mib(self) -> float:
        """The last sample, in MiB (0 before the first)."""
        return self.samples[-1][1] / MIB if self.samples else 0.0

    def peak_mib(self, start: float = float("-inf"), end: float = float("inf")) -> float:
        """The highest sample taken in [start, end] (monotonic seconds), in MiB."""
        within = [rss for t, rss in list(self.samples) if start <= t <= end]
        if not within:
            raise RuntimeError("no RSS sample in the window")
        return max(within) / MIB
