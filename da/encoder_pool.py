"""Long-lived worker processes for the ckzg work of encoding and verifying (issue 6): a local
process pool, or a client of a dask.distributed cluster, behind one `Executor` (`EncoderPool`).

Each worker loads the trusted setup once, from the file the parent wrote, so no encode pays for
it. Workers start with forkserver (never fork: the parent runs gRPC and event-loop threads).
`erasure.parallel.encode_square_stream` maps its row batches over whatever Executor it is given;
managing processes and clusters lives here, outside `erasure` (pure maths).
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from erasure import kzg

MAX_WORKERS = 1024
DASK_WAIT_SECONDS = 60.0


def _init_worker(setup_path: str, precompute: int, node_pid: int | None = None) -> None:
    """Worker initializer: exit with the node (`node_pid`), then load the trusted setup once,
    from the file the parent already wrote."""
    if node_pid is not None:
        _exit_with(node_pid)
    kzg.use_trusted_setup(Path(setup_path), precompute)


def _exit_with(pid: int) -> None:
    """Exit this worker as soon as process `pid` (the node) is gone, however it died.

    Why: a worker's parent is the forkserver, not the node, and each worker holds the
    forkserver's "alive" pipe, so after a kill -9 of the node neither would ever exit (both
    waiting for the other), keeping memory and cores. A pidfd becomes readable when `pid` exits.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # the node died before this worker started
        os._exit(1)
    except (AttributeError, OSError):  # no pidfds here: the worker lives until its pool closes
        return

    def watch() -> None:
        select.select([pidfd], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-node", daemon=True).start()


def _start_method() -> str:
    # Not fork: the producer's parent runs gRPC and event-loop threads, unsafe to fork.
    return "forkserver" if "forkserver" in get_all_start_methods() else "spawn"


class EncoderPool(Executor):
    """An Executor for `encode_square(..., executor=pool)` that knows how many workers it has
    (`erasure.parallel` sizes its batches by `workers`).

    Wraps a process pool or a dask.distributed client's executor; `shutdown()` releases it
    (and closes the dask client it opened, never the cluster).
    """

    def __init__(self, inner: Executor, workers: Callable[[], int], client: Any = None):
        self._inner, self._workers, self._client = inner, workers, client

    @property
    def workers(self) -> int:
        """Worker processes (dask: worker threads in the cluster now) that run batches."""
        return max(1, self._workers())

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            self._inner.shutdown(wait=wait, cancel_futures=True)
        else:  # dask's ClientExecutor knows no `cancel_futures`
            self._inner.shutdown(wait=wait)
        if self._client is not None:
            self._client.close()


def check_workers(workers: int) -> None:
    """Raise ValueError unless `workers` is an int in 1..MAX_WORKERS."""
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise ValueError(f"workers must be an integer, got {workers!r}")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be in 1..{MAX_WORKERS}, got {workers}")


def default_workers() -> int:
    """All the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_encoder_pool(
    workers: int,
    *,
    dask_scheduler: str | None = None,
    precompute: int = kzg.DEFAULT_PRECOMPUTE,
) -> EncoderPool:
    """Long-lived encoding workers, each with the trusted setup loaded once, ready to use.

    Without `dask_scheduler`: `workers` processes on this machine. With it (an address such as
    `tcp://10.0.0.5:8786`): a client of that dask.distributed cluster, waiting until `workers`
    workers have joined; batches then go to every worker of the cluster. Raises ValueError on
    a bad `workers`. Call `shutdown()` when done (or use it as a context manager).
    """
    check_workers(workers)
    setup_path = str(kzg.trusted_setup_file())  # written once here, read by every worker
    if dask_scheduler is not None:
        return _dask_pool(workers, dask_scheduler, setup_path, precompute)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context(_start_method()),
        initializer=_init_worker,
        initargs=(setup_path, precompute, os.getpid()),
    )
    # Start every worker now (and load its setup) rather than inside the first encode.
    for future in [pool.submit(_ready) for _ in range(workers)]:
        future.result()
    return EncoderPool(pool, lambda: workers)


def _ready() -> bool:
    return kzg.settings() is not None


def _dask_pool(workers: int, address: str, setup_path: str, precompute: int) -> EncoderPool:
    from distributed import Client  # optional: needed only to scale out over machines

    client = Client(address, set_as_default=False)
    try:
        client.wait_for_workers(workers, timeout=DASK_WAIT_SECONDS)
        # Load the setup on the workers there now; any that join later load it on first use.
        client.run(_init_worker, setup_path, precompute)
    except BaseException:
        client.close()
        raise

    def threads() -> int:
        return sum(client.nthreads().values())

    return EncoderPool(client.get_executor(pure=False), threads, client)
