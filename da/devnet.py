"""`da devnet`: a whole network on loopback, for trying the system and for end-to-end tests.

Starts a producer, storage nodes (attesting, with their own keys) and light clients as separate
`da` processes, each from a TOML config file written into the data directory (so an operator can
read and reuse them), submits demo blobs through the gRPC API and shows per height: size, encode
time, how many storage nodes hold the block, the certificate and every light client's confidence.

The devnet only talks to its processes through their command lines, gRPC and /metrics; it never
imports the producer, storage node or light client code. Every child runs in its own session
(process group) and is told by the kernel to stop if the devnet dies; `run` stops them all
(SIGTERM, wait, SIGKILL) on every way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from da.api.client import bearer_metadata, open_channel
from da.config import DevnetConfig
from da.header import header_from_bytes
from da.signing import generate_keypair, read_key_file, write_key_file
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

EXIT_OK = 0
EXIT_FAILURE = 1
LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 180.0  # the first start of a process may write the trusted setup cache
STOP_GRACE_SECONDS = 10.0  # SIGTERM, then SIGKILL after this long
POLL_SECONDS = 0.5
REDRAW_SECONDS = 1.0
RPC_TIMEOUT_SECONDS = 3.0
LIGHT_SAMPLE_WINDOW_SECONDS = 30.0  # the light clients' --sample-window
HEIGHT_TIMEOUT_SECONDS = LIGHT_SAMPLE_WINDOW_SECONDS + 60.0  # header seen -> every verdict in
CERTIFICATE_GRACE_SECONDS = 10.0  # after the verdicts, wait this long for the certificate
STALL_MIN_SECONDS = 90.0  # no new block for max(this, 20 block times) fails a --blocks run
LOG_TAIL_LINES = 40
ROWS_SHOWN = 15
DEMO_NAMESPACES = ("demo-rollup-a", "demo-rollup-b", "demo-rollup-c")
DEMO_BLOB_BYTES = (512, 4096)  # size range of a demo blob: squares stay small and fast
ENCODE_WORKERS = 1
GROUP_LEASE_SECONDS = 2
# The producer logs "block 7: k=1, 3 blobs, 8219 bytes, encoded in 0.855 s, ..." per block.
ENCODE_LOG_LINE = re.compile(rb"\bblock (\d+): .*?encoded in ([0-9.]+) s")


class DevnetError(Exception):
    """The devnet cannot go on; `node` names the process to blame (its log tail is shown)."""

    def __init__(self, message: str, node: Node | None = None) -> None:
        super().__init__(message)
        self.node = node


# --- layout: ports, keys, config files ------------------------------------------------------


@dataclass
class Node:
    """One `da <role>` process of the devnet, started from `config_path`."""

    name: str
    role: str  # "producer" | "storage-node" | "light-client" | "etcd"
    port: int
    metrics_port: int  # an etcd member's peer port
    config_path: Path
    log_path: Path
    public_key: str = ""  # hex; producer and storage nodes
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@dataclass
class Layout:
    """Every file and process of a devnet rooted at `root`."""

    root: Path
    chain_id: str
    token_file: Path
    producer: Node
    storage: list[Node]
    light: list[Node]
    quorum: int
    replicas: list[Node] = field(default_factory=list)  # a group's other producers
    etcd: list[Node] = field(default_factory=list)  # a group's etcd members

    @property
    def producers(self) -> list[Node]:
        return [self.producer, *self.replicas]

    @property
    def nodes(self) -> list[Node]:
        return [*self.etcd, *self.producers, *self.storage, *self.light]


def port_is_free(port: int) -> bool:
    """True if nothing listens on loopback `port` and it can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(base: int, count: int) -> list[int]:
    """`count` free loopback ports, scanning upwards from `base` and skipping busy ones."""
    ports: list[int] = []
    port = base
    while len(ports) < count:
        if port > 65535:
            raise DevnetError(f"not enough free ports above {base}; try another --base-port")
        if port_is_free(port):
            ports.append(port)
        port += 1
    return ports


def ensure_key(path: Path) -> str:
    """The hex public key of the key file at `path`, creating the file if missing (reused on a
    restart, so the chain's trust roots stay valid)."""
    if not path.exists():
        write_key_file(path, generate_keypair())
    return read_key_file(path).public.hex()


def ensure_token(path: Path) -> None:
    """A random bearer token for the producer's write methods (mode 0600), kept if present."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")


def toml_document(settings: dict[str, Any]) -> str:
    """A flat TOML document of strings, numbers, booleans and lists of strings."""
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in settings.items())


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def plan_layout(config: DevnetConfig, root: Path) -> Layout:
    """Choose ports and names, create keys and the token; no config file is written yet."""
    for sub in ("keys", "config", "logs", "nodes"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    group = config.producers if config.producers > 1 else 0
    count = config.producers + group + config.storage_nodes + config.light_clients
    ports = iter(free_ports(config.base_port, 2 * count))

    def node(name: str, role: str) -> Node:
        return Node(name, role, next(ports), next(ports), root / "config" / f"{name}.toml",
                    root / "logs" / f"{name}.log")

    producer = node("producer", "producer")
    producer.public_key = ensure_key(root / "keys" / "producer.key")
    replicas = [node(f"producer-{i}", "producer") for i in range(2, config.producers + 1)]
    for r in replicas:
        r.public_key = ensure_key(root / "keys" / f"{r.name}.key")
    etcd = [node(f"etcd-{i}", "etcd") for i in range(1, group + 1)]
    storage = [node(f"storage-{i}", "storage-node") for i in range(1, config.storage_nodes + 1)]
    for s in storage:
        s.public_key = ensure_key(root / "keys" / f"{s.name}.key")
    light = [node(f"light-{i}", "light-client") for i in range(1, config.light_clients + 1)]
    token_file = root / "keys" / "auth.token"
    ensure_token(token_file)
    quorum = config.storage_nodes // 2 + 1  # a majority: one slow node does not stall certificates
    return Layout(root, config.chain_id, token_file, producer, storage, light, quorum, replicas,
                  etcd)


def role_settings(layout: Layout, node: Node, config: DevnetConfig) -> dict[str, Any]:
    """The TOML settings of `node` (keys are the `da <role>` flag names)."""
    common = {
        "data-dir": str(layout.root / "nodes" / node.name),
        "listen": node.address,
        "metrics-port": node.metrics_port,
        "chain-id": layout.chain_id,
    }
    if node.role == "producer":
        return {**common, "key-file": str(layout.root / "keys" / f"{node.name}.key"),
                "block-time": config.block_time_seconds, "max-rows": config.max_rows,
                "quorum": layout.quorum, "operator": [s.public_key for s in layout.storage],
                "workers": ENCODE_WORKERS, "auth-token-file": str(layout.token_file),
                **group_settings(layout, node)}
    trusted = {"trusted-key": [p.public_key for p in layout.producers],
               "max-rows": config.max_rows}
    if node.role == "storage-node":
        peers = [s.address for s in layout.storage if s is not node]
        return {**common, **trusted, "producer": [p.address for p in layout.producers],
                **({"peer": peers} if peers else {}),
                "key-file": str(layout.root / "keys" / f"{node.name}.key")}
    return {**common, **trusted, "peer": [s.address for s in layout.storage],
            "confidence": 0.99, "sample-window": LIGHT_SAMPLE_WINDOW_SECONDS}


def group_settings(layout: Layout, node: Node) -> dict[str, Any]:
    """A group replica's etcd members and other replicas (nothing for a lone producer)."""
    if not layout.etcd:
        return {}
    return {"etcd": [e.address for e in layout.etcd], "lease-seconds": GROUP_LEASE_SECONDS,
            "replica": [p.address for p in layout.producers if p is not node]}


def etcd_argv(layout: Layout, node: Node) -> list[str]:
    """The command line of an etcd member of the devnet (`port`: client, `metrics_port`: peer)."""
    client, peer = f"http://{node.address}", f"http://{LOOPBACK}:{node.metrics_port}"
    cluster = ",".join(f"{e.name}=http://{LOOPBACK}:{e.metrics_port}" for e in layout.etcd)
    return [
        "etcd", "--name", node.name, "--data-dir", str(layout.root / "nodes" / node.name),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", cluster, "--initial-cluster-state", "new",
        "--initial-cluster-token", layout.chain_id, "--log-level", "warn",
    ]


def write_configs(layout: Layout, config: DevnetConfig) -> None:
    """Write every node's TOML config file (rewritten on each start: ports may have moved)."""
    for node in layout.nodes:
        if node.role == "etcd":
            continue
        text = f"# da {node.role} --config {node.config_path}  (written by `da devnet`)\n"
        node.config_path.write_text(text + toml_document(role_settings(layout, node, config)))


# --- processes ------------------------------------------------------------------------------


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
            child_argv(node, layout), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
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
    async with open_channel(node.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if exited(node) is not None:
                raise DevnetError(f"{node.name} exited with code {exited(node)}", node)
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
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


# --- watching the chain ---------------------------------------------------------------------


@dataclass
class HeightView:
    """What the devnet knows about one height."""

    height: int
    seen_at: float
    k: int = 0
    blobs: int = 0
    payload_bytes: int = 0
    encode_seconds: float | None = None
    holders: set[str] = field(default_factory=set)
    signers: int = 0
    verdicts: dict[str, tuple[str, float]] = field(default_factory=dict)  # light -> (status, c)
    verdicts_at: float | None = None
    finished: bool = False
    failure: str = ""

    def available_everywhere(self, light: Sequence[Node]) -> bool:
        return all(self.verdicts.get(n.name, ("", 0.0))[0] == "AVAILABLE" for n in light)


FINAL_VERDICTS = ("AVAILABLE", "UNAVAILABLE")


class Watcher:
    """Polls the producer, storage nodes and light clients over gRPC and /metrics."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.heights: dict[int, HeightView] = {}
        self.head = 0
        self.start_height = 0
        self.last_new_block = time.monotonic()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._encode_seen: tuple[float, float] | None = None  # histogram (count, sum)
        self._logged_encode: dict[int, float] = {}  # height -> seconds, from the producer log
        self._log_offset = 0

    def channel(self, node: Node) -> grpc.aio.Channel:
        if node.name not in self._channels:
            self._channels[node.name] = open_channel(node.address)
        return self._channels[node.name]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def producer_head(self) -> int:
        stub = da_pb2_grpc.HeaderServiceStub(self.channel(self.layout.producer))
        try:
            signed = await stub.GetHeader(pb.GetHeaderRequest(height=0),
                                          timeout=RPC_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise
        return header_from_bytes(signed.header).height

    async def poll(self) -> None:
        """One round: new heights, encode times, then every unfinished height."""
        head = await self.producer_head()
        now = time.monotonic()
        for height in range(max(self.head, self.start_height) + 1, head + 1):
            self.heights[height] = HeightView(height, now)
            self.last_new_block = now
        self.head = max(self.head, head)
        await self._encode_times()
        pending = [v for v in self.heights.values() if not v.finished]
        await asyncio.gather(*(self._poll_height(v) for v in pending))

    async def _poll_height(self, view: HeightView) -> None:
        if not view.k:
            await self._read_header(view)
        await asyncio.gather(
            *(self._check_holder(view, s) for s in self.layout.storage
              if s.name not in view.holders),
            self._check_certificate(view),
            *(self._check_light(view, n) for n in self.layout.light
              if view.verdicts.get(n.name, ("", 0.0))[0] not in FINAL_VERDICTS),
        )
        self._maybe_finish(view)

    async def _read_header(self, view: HeightView) -> None:
        stub = da_pb2_grpc.HeaderServiceStub(self.channel(self.layout.producer))
        signed = await stub.GetHeader(pb.GetHeaderRequest(height=view.height),
                                      timeout=RPC_TIMEOUT_SECONDS)
        header = header_from_bytes(signed.header)
        view.k, view.blobs = header.k, len(header.blobs)
        view.payload_bytes = sum(entry.length for entry in header.blobs)

    async def _check_holder(self, view: HeightView, node: Node) -> None:
        """A storage node's HeaderService only answers for heights whose whole block it stores."""
        stub = da_pb2_grpc.HeaderServiceStub(self.channel(node))
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.GetHeader(pb.GetHeaderRequest(height=view.height),
                                 timeout=RPC_TIMEOUT_SECONDS)
            view.holders.add(node.name)

    async def _check_certificate(self, view: HeightView) -> None:
        stub = da_pb2_grpc.AttestationServiceStub(self.channel(self.layout.producer))
        with contextlib.suppress(grpc.aio.AioRpcError):
            cert = await stub.GetCertificate(pb.GetCertificateRequest(height=view.height),
                                             timeout=RPC_TIMEOUT_SECONDS)
            view.signers = max(view.signers, len(cert.public_keys))

    async def _check_light(self, view: HeightView, node: Node) -> None:
        stub = da_pb2_grpc.SamplingServiceStub(self.channel(node))
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await stub.GetAvailability(pb.GetAvailabilityRequest(height=view.height),
                                               timeout=RPC_TIMEOUT_SECONDS)
            view.verdicts[node.name] = (pb.Availability.Name(reply.status), reply.confidence)

    def _maybe_finish(self, view: HeightView) -> None:
        now = time.monotonic()
        light = self.layout.light
        if view.verdicts_at is None and all(
            view.verdicts.get(n.name, ("", 0.0))[0] in FINAL_VERDICTS for n in light
        ):
            view.verdicts_at = now
        certified = view.signers >= self.layout.quorum
        if view.verdicts_at is not None and (
            certified or now - view.verdicts_at > CERTIFICATE_GRACE_SECONDS
        ):
            view.finished = True
        elif now - view.seen_at > HEIGHT_TIMEOUT_SECONDS:
            waiting = [n.name for n in light
                       if view.verdicts.get(n.name, ("", 0.0))[0] not in FINAL_VERDICTS]
            view.finished = True
            view.failure = f"no verdict from {', '.join(waiting)} within " \
                f"{HEIGHT_TIMEOUT_SECONDS:g} s"

    async def _encode_times(self) -> None:
        """Per-height encode time from the producer's log ("block N: ... encoded in S s");
        if the log says nothing of the kind, from its da_block_encode_seconds histogram."""
        self._read_producer_log()
        for view in self.heights.values():
            if view.encode_seconds is None:
                view.encode_seconds = self._logged_encode.get(view.height)
        if not self._logged_encode:
            await self._encode_times_from_metrics()

    def _read_producer_log(self) -> None:
        try:
            with open(self.layout.producer.log_path, "rb") as log:
                log.seek(self._log_offset)
                chunk = log.read()
        except OSError:
            return
        whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
        self._log_offset += len(whole)
        for match in ENCODE_LOG_LINE.finditer(whole):
            self._logged_encode[int(match[1])] = float(match[2])

    async def _encode_times_from_metrics(self) -> None:
        """The growth of the histogram's sum over the growth of its count since the last
        scrape (the mean so far on the first scrape), for heights without a time yet."""
        try:
            text = await asyncio.to_thread(scrape, self.layout.producer.metrics_port)
        except OSError:
            return
        count = metric_sample(text, "da_block_encode_seconds_count")
        total = metric_sample(text, "da_block_encode_seconds_sum")
        if not count or total is None:
            return
        previous, self._encode_seen = self._encode_seen, (count, total)
        if previous is not None and count <= previous[0]:
            return
        base_count, base_total = previous or (0.0, 0.0)
        per_block = (total - base_total) / (count - base_count)
        for view in self.heights.values():
            if view.encode_seconds is None:
                view.encode_seconds = per_block


def scrape(port: int) -> str:
    """The Prometheus text exposition at loopback `port`."""
    url = f"http://{LOOPBACK}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=RPC_TIMEOUT_SECONDS) as response:
        return str(response.read().decode())


def metric_sample(text: str, name: str) -> float | None:
    """The value of the unlabelled sample `name` in exposition `text`, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# --- demo blobs -----------------------------------------------------------------------------


def demo_blob(rng: random.Random, namespace: str, sequence: int) -> bytes:
    """Readable demo payload of a few KB (`da blob get` prints it as text)."""
    size = rng.randint(*DEMO_BLOB_BYTES)
    line = f"{namespace} demo blob #{sequence}: the quick brown fox jumps over the lazy dog\n"
    return (line * (size // len(line) + 1)).encode()[:size]


async def submit_demo_blobs(layout: Layout, interval: float, rng: random.Random) -> None:
    """Submit one blob per demo namespace every `interval` seconds until cancelled."""
    token = layout.token_file.read_text(encoding="utf-8").strip()
    sequence = 0
    async with open_channel(layout.producer.address) as channel:
        stub = da_pb2_grpc.BlobServiceStub(channel)
        while True:
            for namespace in DEMO_NAMESPACES:
                sequence += 1
                request = pb.SubmitBlobRequest(namespace=namespace.encode(),
                                               data=demo_blob(rng, namespace, sequence))
                with contextlib.suppress(grpc.aio.AioRpcError):  # a busy producer: next round
                    await stub.SubmitBlob(request, metadata=bearer_metadata(token),
                                          timeout=RPC_TIMEOUT_SECONDS)
            await asyncio.sleep(interval)


# --- display --------------------------------------------------------------------------------


def _cell_verdict(verdict: tuple[str, float] | None) -> str:
    if verdict is None:
        return "-"
    status, confidence = verdict
    if status == "AVAILABLE":
        return f"{confidence:.4f}"
    return {"SAMPLING": "sampling", "UNAVAILABLE": "UNAVAIL"}.get(status, status.lower())


def row_cells(view: HeightView, layout: Layout) -> list[str]:
    encode = "-" if view.encode_seconds is None else f"{view.encode_seconds * 1000:.0f}"
    return [
        str(view.height), str(view.k or "-"), str(view.blobs), str(view.payload_bytes), encode,
        f"{len(view.holders)}/{len(layout.storage)}", f"{view.signers}/{layout.quorum}",
        *(_cell_verdict(view.verdicts.get(n.name)) for n in layout.light),
    ]


def table_header(layout: Layout) -> list[str]:
    return ["height", "k", "blobs", "bytes", "encode ms", "stored", "cert",
            *(n.name for n in layout.light)]


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
                     for row in rows)


def format_line(view: HeightView, layout: Layout) -> str:
    """One line per finished height (output that is not a terminal)."""
    cells = row_cells(view, layout)
    parts = [f"height {cells[0]}", f"k {cells[1]}", f"blobs {cells[2]}", f"bytes {cells[3]}",
             f"encode_ms {cells[4]}", f"stored {cells[5]}", f"cert {cells[6]}"]
    parts += [f"{n.name} {c}" for n, c in zip(layout.light, cells[7:], strict=True)]
    line = " ".join(parts)
    return line + (f" FAILED: {view.failure}" if view.failure else "")


def status_page(node: Node) -> str:
    """The node's status page (DESIGN 15); /status.json and /metrics live beside it."""
    return f"http://{LOOPBACK}:{node.metrics_port}/"


def banner(layout: Layout) -> str:
    p = layout.producer
    lines = [
        f"da devnet: chain {layout.chain_id!r}, data dir {layout.root}",
        f"  producer      {p.address}  page {status_page(p)}  quorum {layout.quorum}",
        *(f"  {r.name:<13} {r.address}  page {status_page(r)}" for r in layout.replicas),
        *(f"  {e.name:<13} {e.address}  (etcd member)" for e in layout.etcd),
        *(f"  {s.name:<13} {s.address}  page {status_page(s)}" for s in layout.storage),
        *(f"  {n.name:<13} {n.address}  page {status_page(n)}" for n in layout.light),
        f"  configs {layout.root / 'config'}  logs {layout.root / 'logs'}",
        f"  submit: da blob submit --node {p.address} --namespace demo --file F "
        f"--auth-token-file {layout.token_file} --wait",
    ]
    return "\n".join(lines)


class Display:
    """A redrawn table on a terminal; one line per finished height otherwise."""

    def __init__(self, layout: Layout, out: TextIO) -> None:
        self.layout = layout
        self.out = out
        self.tty = out.isatty()
        self._printed: set[int] = set()
        self._drawn_at = 0.0

    def start(self) -> None:
        if not self.tty:
            print(banner(self.layout), file=self.out, flush=True)

    def update(self, watcher: Watcher, status: str) -> None:
        if self.tty:
            self._redraw(watcher, status)
            return
        for height in sorted(watcher.heights):
            view = watcher.heights[height]
            if view.finished and height not in self._printed:
                self._printed.add(height)
                print(format_line(view, self.layout), file=self.out, flush=True)

    def _redraw(self, watcher: Watcher, status: str) -> None:
        now = time.monotonic()
        if now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        views = [watcher.heights[h] for h in sorted(watcher.heights)[-ROWS_SHOWN:]]
        rows = [table_header(self.layout), *(row_cells(v, self.layout) for v in views)]
        screen = f"{banner(self.layout)}\n\n{format_table(rows)}\n\n{status}  (Ctrl-C stops)\n"
        self.out.write("\x1b[H\x1b[2J" + screen)
        self.out.flush()


# --- the run --------------------------------------------------------------------------------


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
    print(f"da devnet: starting {len(layout.nodes)} processes in {layout.root} ...",
          file=out, flush=True)
    if layout.etcd:
        if shutil.which("etcd") is None:
            raise DevnetError("--producers needs etcd on PATH: install the Debian package "
                              "etcd-server (apt-get install etcd-server)")
        await start_group(layout, config, layout.etcd)
    await start_group(layout, config, layout.producers)
    watcher = Watcher(layout)
    watcher.start_height = watcher.head = await watcher.producer_head()
    submitter = asyncio.create_task(
        submit_demo_blobs(layout, config.block_time_seconds, random.Random()))
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
        with contextlib.suppress(grpc.aio.AioRpcError):  # a slow answer: try again next round
            await watcher.poll()
        done = _progress(watcher, config)
        display.update(watcher, f"head {watcher.head}, {done} heights concluded")
        if config.blocks is not None:
            if done >= config.blocks:
                return _verdict(watcher, config, display.out)
            if time.monotonic() - watcher.last_new_block > stall_seconds:
                raise DevnetError(f"producer made no block for {stall_seconds:g} s",
                                  layout.producer)
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
            print(f"da devnet: height {view.height} not available: "
                  f"{format_line(view, watcher.layout)}", file=out, flush=True)
        blamed = {n.name: n for v in bad for n in watcher.layout.light
                  if v.verdicts.get(n.name, ("", 0.0))[0] != "AVAILABLE"}
        for node in blamed.values():
            print(f"--- last lines of {node.log_path} ---\n{log_tail(node)}", file=out, flush=True)
        return EXIT_FAILURE
    blocks = f"{len(views)} block{'s' if len(views) != 1 else ''}"
    print(f"da devnet: {blocks}, every one available to every light client",
          file=out, flush=True)
    return EXIT_OK


def _check_alive(layout: Layout) -> None:
    for node in layout.nodes:
        code = exited(node)
        if code is not None:
            raise DevnetError(f"{node.name} exited with code {code}", node)


def _report_failure(error: DevnetError, out: TextIO) -> None:
    print(f"da devnet: FAILED: {error}", file=out, flush=True)
    if error.node is not None:
        print(f"--- last lines of {error.node.log_path} ---\n{log_tail(error.node)}",
              file=out, flush=True)
