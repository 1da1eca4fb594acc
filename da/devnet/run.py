"""`run`: lay out, start every process, submit demo blobs, watch until done, and the verdict."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from da.client import AsyncDAClient, ClientError
from da.config import DevnetConfig
from da.devnet.display import Display, format_line
from da.devnet.layout import RPC_TIMEOUT_SECONDS, DevnetError, Layout, plan_layout, write_configs
from da.devnet.processes import exited, log_tail, start_group, stop_all
from da.devnet.watch import Watcher

EXIT_OK = 0
EXIT_FAILURE = 1
POLL_SECONDS = 0.5
STALL_MIN_SECONDS = 90.0  # no new block for max(this, 20 block times) fails a --blocks run
DEMO_NAMESPACES = ("demo-rollup-a", "demo-rollup-b", "demo-rollup-c")
DEMO_BLOB_BYTES = (512, 4096)  # size range of a demo blob: squares stay small and fast


def demo_blob(rng: random.Random, namespace: str, sequence: int) -> bytes:
    """Readable demo payload of a few KB (`da blob get` prints it as text)."""
    size = rng.randint(*DEMO_BLOB_BYTES)
    line = f"{namespace} demo blob #{sequence}: the quick brown fox jumps over the lazy dog\n"
    return (line * (size // len(line) + 1)).encode()[:size]


async def submit_demo_blobs(layout: Layout, interval: float, rng: random.Random) -> None:
    """Submit one blob per demo namespace every `interval` seconds until cancelled."""
    token = layout.token_file.read_text(encoding="utf-8").strip()
    sequence = 0
    async with AsyncDAClient(
        [layout.producer.address], token=token, timeout=RPC_TIMEOUT_SECONDS
    ) as client:
        while True:
            for namespace in DEMO_NAMESPACES:
                sequence += 1
                data = demo_blob(rng, namespace, sequence)
                with contextlib.suppress(ClientError):  # a busy producer: next round
                    await client.submit(namespace.encode(), data)
            await asyncio.sleep(interval)


@contextlib.contextmanager
def data_directory(config: DevnetConfig) -> Iterator[Path]:
    """The given data directory, or a temporary one removed afterwards."""
    if config.data_dir is not None:
        root = Path(config.data_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix="da-devnet-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def run(config: DevnetConfig, out: TextIO | None = None) -> int:
    """Run the devnet until cancelled, or until `config.blocks` new heights are concluded.

    Returns 0 when every one of those heights was found AVAILABLE by every light client, 1
    otherwise (a process died, the producer stalled, a verdict timed out or was UNAVAILABLE)."""
    config.validate()
    out = out or sys.stdout
    with data_directory(config) as root:
        layout = plan_layout(config, root)
        write_configs(layout, config)
        try:
            return await _run(layout, config, out)
        except DevnetError as e:
            _report_failure(e, out)
            return EXIT_FAILURE
        finally:
            running = [n for n in layout.nodes if n.proc is not None and exited(n) is None]
            if running:
                print(f"da devnet: stopping {len(running)} processes", file=out, flush=True)
            stop_all(layout.nodes)


async def _run(layout: Layout, config: DevnetConfig, out: TextIO) -> int:
    """Producer, then demo blobs (so storage nodes find blocks when they start), storage nodes,
    light clients; then watch every height from the producer's head before the first blob."""
    display = Display(layout, out)
    print(
        f"da devnet: starting {len(layout.nodes)} processes in {layout.root} ...",
        file=out,
        flush=True,
    )
    if layout.etcd:
        if shutil.which("etcd") is None:
            raise DevnetError(
                "--producers needs etcd on PATH: install the Debian package "
                "etcd-server (apt-get install etcd-server)"
            )
        await start_group(layout, config, layout.etcd)
    await start_group(layout, config, layout.producers)
    watcher = Watcher(layout)
    watcher.start_height = watcher.head = await watcher.producer_head()
    submitter = asyncio.create_task(
        submit_demo_blobs(layout, config.block_time_seconds, random.Random())
    )
    try:
        await start_group(layout, config, layout.storage)
        await start_group(layout, config, layout.light)
        display.start()
        watcher.last_new_block = time.monotonic()
        return await _watch(watcher, display, config)
    finally:
        submitter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await submitter
        await watcher.close()


async def _watch(watcher: Watcher, display: Display, config: DevnetConfig) -> int:
    layout = watcher.layout
    stall_seconds = max(STALL_MIN_SECONDS, 20 * config.block_time_seconds)
    while True:
        _check_alive(layout)
        with contextlib.suppress(ClientError):  # a slow answer: try again next round
            await watcher.poll()
        done = _progress(watcher, config)
        display.update(watcher, f"head {watcher.head}, {done} heights concluded")
        if config.blocks is not None:
            if done >= config.blocks:
                return _verdict(watcher, config, display.out)
            if time.monotonic() - watcher.last_new_block > stall_seconds:
                raise DevnetError(
                    f"producer made no block for {stall_seconds:g} s", layout.producer
                )
        await asyncio.sleep(POLL_SECONDS)


def _progress(watcher: Watcher, config: DevnetConfig) -> int:
    """How many of the first `config.blocks` heights after the start height are concluded."""
    first = watcher.start_height + 1
    wanted = range(first, first + (config.blocks or len(watcher.heights)))
    return sum(1 for h in wanted if h in watcher.heights and watcher.heights[h].finished)


def _verdict(watcher: Watcher, config: DevnetConfig, out: TextIO) -> int:
    first = watcher.start_height + 1
    views = [watcher.heights[h] for h in range(first, first + (config.blocks or 0))]
    bad = [v for v in views if v.failure or not v.available_everywhere(watcher.layout.light)]
    if bad:
        for view in bad:
            print(
                f"da devnet: height {view.height} not available: "
                f"{format_line(view, watcher.layout)}",
                file=out,
                flush=True,
            )
        blamed = {
            n.name: n
            for v in bad
            for n in watcher.layout.light
            if v.verdicts.get(n.name, ("", 0.0))[0] != "AVAILABLE"
        }
        for node in blamed.values():
            print(f"--- last lines of {node.log_path} ---\n{log_tail(node)}", file=out, flush=True)
        return EXIT_FAILURE
    blocks = f"{len(views)} block{'s' if len(views) != 1 else ''}"
    print(f"da devnet: {blocks}, every one available to every light client", file=out, flush=True)
    return EXIT_OK


def _check_alive(layout: Layout) -> None:
    for node in layout.nodes:
        code = exited(node)
        if code is not None:
            raise DevnetError(f"{node.name} exited with code {code}", node)


def _report_failure(error: DevnetError, out: TextIO) -> None:
    print(f"da devnet: FAILED: {error}", file=out, flush=True)
    if error.node is not None:
        print(
            f"--- last lines of {error.node.log_path} ---\n{log_tail(error.node)}",
            file=out,
            flush=True,
        )
