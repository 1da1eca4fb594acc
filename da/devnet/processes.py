"""Process supervision: each `da` child in its own session, told by the kernel to stop if the
devnet dies; started group by group, waited for until serving, stopped with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from da.client import AsyncDAClient, ClientError
from da.config import DevnetConfig
from da.devnet.layout import (
    DevnetError,
    Layout,
    Node,
    etcd_argv,
    free_ports,
    port_is_free,
    write_configs,
)

START_TIMEOUT_SECONDS = 180.0  # the first start of a process may write the trusted setup cache
STOP_GRACE_SECONDS = 10.0  # SIGTERM, then SIGKILL after this long
LOG_TAIL_LINES = 40


def da_command() -> list[str]:
    """How to run the `da` entry point of this installation."""
    script = Path(sys.executable).with_name("da")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from da.cli import main; sys.exit(main())"]


# Runs in a fresh interpreter in front of each child: ask the kernel to SIGTERM the process when
# the devnet dies (even by SIGKILL), then become `da`. A preexec_fn would do the same in the
# devnet's own forked child, but forking a process with live gRPC threads crashes in gRPC's fork
# handlers; spawning (vfork + exec) this wrapper does not.
DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the devnet is already gone
os.execv(sys.argv[2], sys.argv[2:])
"""


def child_argv(node: Node, layout: Layout | None = None) -> list[str]:
    """The command line of `node`'s process (behind the die-with-parent wrapper on Linux)."""
    if node.role == "etcd" and layout is not None:
        argv = etcd_argv(layout, node)
        argv[0] = shutil.which("etcd") or "etcd"
    else:
        argv = [*da_command(), node.role, "--config", str(node.config_path)]
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *argv]


def spawn(node: Node, layout: Layout | None = None) -> None:
    """Start `da <role> --config FILE` (an etcd member: `etcd ...`) in its own session, its
    output appended to its log."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(node.log_path, "ab") as log:
        node.proc = subprocess.Popen(
            child_argv(node, layout),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def exited(node: Node) -> int | None:
    """The exit code if the process has ended, else None."""
    return None if node.proc is None else node.proc.poll()


def _signal_group(node: Node, signum: int) -> None:
    if node.proc is None or node.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(node.proc.pid, signum)  # the whole group: encoding workers too


def stop_all(nodes: Sequence[Node], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every process group, wait up to `grace` seconds, then SIGKILL what is left."""
    for node in reversed(nodes):
        _signal_group(node, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for node in nodes:
        if node.proc is None:
            continue
        try:
            node.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(node, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(5.0)
        _signal_group(node, signal.SIGKILL)  # leftovers in the group (pool workers)


def log_tail(node: Node, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = node.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


async def wait_serving(node: Node, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Return once the node's gRPC health service answers SERVING (an etcd member: its /health
    endpoint); `DevnetError` if it exits or takes longer than `timeout`."""
    if node.role == "etcd":
        await _wait_etcd_healthy(node, timeout)
        return
    deadline = time.monotonic() + timeout
    async with AsyncDAClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if exited(node) is not None:
                raise DevnetError(f"{node.name} exited with code {exited(node)}", node)
            with contextlib.suppress(ClientError):
                if await client.health(node.address) == "SERVING":
                    return
            await asyncio.sleep(0.25)
    raise DevnetError(f"{node.name} not serving on {node.address} after {timeout:g} s", node)


async def _wait_etcd_healthy(node: Node, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://{node.address}/health"
    while time.monotonic() < deadline:
        if exited(node) is not None:
            raise DevnetError(f"{node.name} exited with code {exited(node)}", node)
        with contextlib.suppress(OSError, ValueError):
            reply = await asyncio.to_thread(_read_url, url)
            if b'"health":"true"' in reply:
                return
        await asyncio.sleep(0.25)
    raise DevnetError(f"{node.name} not healthy on {node.address} after {timeout:g} s", node)


def _read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=1.0) as reply:  # noqa: S310 - loopback
        return bytes(reply.read())


async def start_group(layout: Layout, config: DevnetConfig, group: Sequence[Node]) -> None:
    """Start `group` and wait until every one of them answers health checks."""
    if reserve_ports(layout, group):
        write_configs(layout, config)  # only nodes not started yet see new ports
    for node in group:
        spawn(node, layout)
    await asyncio.gather(*(wait_serving(node) for node in group))


def reserve_ports(layout: Layout, group: Sequence[Node]) -> bool:
    """Move the nodes of `group` (not started yet) off ports something else took since the plan
    was made; returns True if any moved. Later groups only point at earlier ones, so their
    configs can still change."""
    moved = False
    for node in group:
        if port_is_free(node.port) and port_is_free(node.metrics_port):
            continue
        taken = max(p for n in layout.nodes for p in (n.port, n.metrics_port))
        node.port, node.metrics_port = free_ports(taken + 1, 2)
        moved = True
    return moved
