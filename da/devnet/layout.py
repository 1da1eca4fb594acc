"""The devnet's layout: ports, names, keys, the token and each process's TOML config file
(written with `tomli_w`, so an operator can read and reuse them).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from da.config import DevnetConfig
from da.signing import generate_keypair, read_key_file, write_key_file

LOOPBACK = "127.0.0.1"
LIGHT_SAMPLE_WINDOW_SECONDS = 30.0  # the light clients' --sample-window
ENCODE_WORKERS = 1
GROUP_LEASE_SECONDS = 2
RPC_TIMEOUT_SECONDS = 3.0


class DevnetError(Exception):
    """The devnet cannot go on; `node` names the process to blame (its log tail is shown)."""

    def __init__(self, message: str, node: Node | None = None) -> None:
        super().__init__(message)
        self.node = node


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
    """`settings` as a TOML document (values: strings, numbers, booleans, lists of them)."""
    return tomli_w.dumps(settings)


def plan_layout(config: DevnetConfig, root: Path) -> Layout:
    """Choose ports and names, create keys and the token; no config file is written yet."""
    for sub in ("keys", "config", "logs", "nodes"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    group = config.producers if config.producers > 1 else 0
    count = config.producers + group + config.storage_nodes + config.light_clients
    ports = iter(free_ports(config.base_port, 2 * count))

    def node(name: str, role: str) -> Node:
        return Node(
            name,
            role,
            next(ports),
            next(ports),
            root / "config" / f"{name}.toml",
            root / "logs" / f"{name}.log",
        )

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
    return Layout(
        root, config.chain_id, token_file, producer, storage, light, quorum, replicas, etcd
    )


def role_settings(layout: Layout, node: Node, config: DevnetConfig) -> dict[str, Any]:
    """The TOML settings of `node` (keys are the `da <role>` flag names)."""
    common = {
        "data-dir": str(layout.root / "nodes" / node.name),
        "listen": node.address,
        "metrics-port": node.metrics_port,
        "chain-id": layout.chain_id,
    }
    if node.role == "producer":
        return {
            **common,
            "key-file": str(layout.root / "keys" / f"{node.name}.key"),
            "block-time": config.block_time_seconds,
            "max-rows": config.max_rows,
            "quorum": layout.quorum,
            "operator": [s.public_key for s in layout.storage],
            "workers": ENCODE_WORKERS,
            "auth-token-file": str(layout.token_file),
            **group_settings(layout, node),
        }
    trusted = {"trusted-key": [p.public_key for p in layout.producers], "max-rows": config.max_rows}
    if node.role == "storage-node":
        peers = [s.address for s in layout.storage if s is not node]
        return {
            **common,
            **trusted,
            "producer": [p.address for p in layout.producers],
            **({"peer": peers} if peers else {}),
            "key-file": str(layout.root / "keys" / f"{node.name}.key"),
        }
    return {
        **common,
        **trusted,
        "peer": [s.address for s in layout.storage],
        "confidence": 0.99,
        "sample-window": LIGHT_SAMPLE_WINDOW_SECONDS,
    }


def group_settings(layout: Layout, node: Node) -> dict[str, Any]:
    """A group replica's etcd members and other replicas (nothing for a lone producer)."""
    if not layout.etcd:
        return {}
    return {
        "etcd": [e.address for e in layout.etcd],
        "lease-seconds": GROUP_LEASE_SECONDS,
        "replica": [p.address for p in layout.producers if p is not node],
    }


def etcd_argv(layout: Layout, node: Node) -> list[str]:
    """The command line of an etcd member of the devnet (`port`: client, `metrics_port`: peer)."""
    cluster = ",".join(f"{e.name}=http://{LOOPBACK}:{e.metrics_port}" for e in layout.etcd)
    return etcd_member_argv(
        name=node.name,
        data_dir=layout.root / "nodes" / node.name,
        client=f"http://{node.address}",
        peer=f"http://{LOOPBACK}:{node.metrics_port}",
        cluster=cluster,
        token=layout.chain_id,
    )


def etcd_member_argv(
    *,
    name: str,
    data_dir: Path,
    client: str,
    peer: str,
    cluster: str,
    token: str,
    binary: str = "etcd",
) -> list[str]:
    """One member of a new etcd cluster (`cluster`: every member's `name=peer URL`), listening
    on `client` for clients and `peer` for the other members; the devnet's and the tests'."""
    return [
        binary,
        "--name", name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", client,
        "--advertise-client-urls", client,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", cluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", token,
        "--log-level", "warn",
    ]  # fmt: skip


def write_configs(layout: Layout, config: DevnetConfig) -> None:
    """Write every node's TOML config file (rewritten on each start: ports may have moved)."""
    for node in layout.nodes:
        if node.role == "etcd":
            continue
        text = f"# da {node.role} --config {node.config_path}  (written by `da devnet`)\n"
        node.config_path.write_text(text + toml_document(role_settings(layout, node, config)))
