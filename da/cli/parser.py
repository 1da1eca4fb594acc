"""The `da` argument parser: one subcommand per role and per client command. Each subcommand's
`handler` default is the function `da.cli.app.main` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from da.api.client import DEFAULT_RPC_TIMEOUT_SECONDS
from da.api.config import (
    DEFAULT_HOST_CONCURRENT_CALLS,
    DEFAULT_HOST_RATE_LIMIT_PER_SECOND,
    DEFAULT_HOST_STREAMS,
    DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PER_SECOND,
)
from da.cli.common import LOG_FORMATS, LOG_LEVELS, WAIT_CHOICES, version
from da.config import DEFAULT_RETENTION_BLOCKS
from erasure.constants import DEFAULT_MAX_ROWS


def build_parser() -> argparse.ArgumentParser:
    """The full `da` parser. Settings of config-file commands default to SUPPRESS, so the parsed
    namespace holds only flags actually given (they override the file)."""
    parser = argparse.ArgumentParser(
        prog="da",
        description="Data availability sampling layer: producer, storage node, "
        "light client, blob client and a local devnet.",
    )
    parser.add_argument("--version", action="version", version=f"da {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="log verbosity (default: info)"
    )
    common.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text lines, or one JSON object per line (default: text)",
    )
    _add_keygen(commands, common)
    _add_producer(commands, common)
    _add_storage_node(commands, common)
    _add_light_client(commands, common)
    _add_blob(commands, common)
    _add_header(commands, common)
    _add_certificate(commands, common)
    _add_availability(commands, common)
    _add_health(commands, common)
    _add_devnet(commands, common)
    return parser


def _role_parser(commands: Any, common: argparse.ArgumentParser, name: str, help_text: str) -> Any:
    sub = commands.add_parser(
        name,
        parents=[common],
        help=help_text,
        description=help_text,
        argument_default=argparse.SUPPRESS,
        epilog="Every flag can also be set in the --config TOML file, keyed by the flag name "
        'without dashes (e.g. listen = "127.0.0.1:7001", trusted-key = ["HEX"]); '
        "flags given on the command line override the file.",
    )
    sub.add_argument("--config", type=Path, metavar="FILE.toml", help="TOML file of settings")
    return sub


def _add_server_flags(sub: Any, default_listen: str, *, takes_writes: bool = False) -> None:
    """The gRPC server's flags; the token ones only for a role with a write method (PROTOCOL.md §11:
    only the producer's SubmitBlob takes a token)."""
    sub.add_argument("--data-dir", type=Path, metavar="D", help="state directory (required)")
    sub.add_argument(
        "--listen",
        metavar="H:P",
        help=f"gRPC listen address, host:port (default: {default_listen})",
    )
    sub.add_argument(
        "--metrics-port",
        type=int,
        metavar="M",
        help="serve Prometheus /metrics on port M (default: no metrics endpoint)",
    )
    sub.add_argument(
        "--metrics-address",
        metavar="ADDR",
        help="address the /metrics endpoint listens on (default: 127.0.0.1; 0.0.0.0 in a "
        "container so Prometheus can scrape it)",
    )
    if takes_writes:
        sub.add_argument(
            "--auth-token-file",
            type=Path,
            metavar="F",
            help="file holding the bearer token SubmitBlob requires",
        )
        sub.add_argument(
            "--insecure",
            action="store_true",
            help="allow listening beyond loopback without an auth token",
        )
    sub.add_argument("--tls-cert", type=Path, metavar="PEM", help="TLS certificate chain")
    sub.add_argument(
        "--tls-key", type=Path, metavar="PEM", help="TLS private key (with --tls-cert)"
    )
    sub.add_argument(
        "--rate-limit",
        type=float,
        metavar="RPS",
        help=f"requests/second allowed per client connection, 0 = unlimited "
        f"(default: {DEFAULT_RATE_LIMIT_PER_SECOND:g})",
    )
    sub.add_argument(
        "--rate-burst",
        type=int,
        metavar="N",
        help=f"most requests a client may send at once (default: {DEFAULT_RATE_LIMIT_BURST})",
    )
    sub.add_argument(
        "--host-rate-limit",
        type=float,
        metavar="RPS",
        help=f"requests/second allowed per client host, all its connections together, 0 = "
        f"unlimited (default: {DEFAULT_HOST_RATE_LIMIT_PER_SECOND:g})",
    )
    sub.add_argument(
        "--host-streams",
        type=int,
        metavar="N",
        help=f"open header streams per client host (default: {DEFAULT_HOST_STREAMS})",
    )
    sub.add_argument(
        "--host-concurrent-calls",
        type=int,
        metavar="N",
        help=f"calls in progress per client host (default: {DEFAULT_HOST_CONCURRENT_CALLS})",
    )
    sub.add_argument(
        "--max-message-bytes",
        type=int,
        metavar="BYTES",
        help="largest gRPC request accepted (default: 32 MiB for the producer, which takes "
        "blobs; 1 MiB for storage nodes and light clients, which take small requests only)",
    )
    sub.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="CA certificates to verify the TLS of every node this one connects to "
        "(default: plaintext channels)",
    )


def _add_trust_flags(sub: Any) -> None:
    sub.add_argument("--chain-id", metavar="ID", help="chain identifier (required)")
    sub.add_argument(
        "--trusted-key",
        action="append",
        metavar="HEX",
        help="producer public key (96 hex chars) to trust; repeatable; at least one required",
    )
    sub.add_argument(
        "--max-rows",
        type=int,
        metavar="K",
        help=f"reject headers whose square has more than K rows (default: {DEFAULT_MAX_ROWS})",
    )


def _add_keygen(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "keygen",
        parents=[common],
        help="create a BLS key file and print its public key",
        description="Create a BLS12-381 key pair, write it to KEYFILE (mode 0600) and print the "
        "public key as 96 hex characters.",
    )
    sub.add_argument("--out", type=Path, required=True, metavar="KEYFILE", help="file to write")
    sub.add_argument("--force", action="store_true", help="overwrite an existing KEYFILE")
    sub.set_defaults(handler="keygen")


def _add_producer(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(commands, common, "producer", "run the block producer")
    _add_server_flags(sub, "127.0.0.1:7000", takes_writes=True)
    sub.add_argument("--key-file", type=Path, metavar="KEYFILE", help="signing key (required)")
    sub.add_argument("--chain-id", metavar="ID", help="chain identifier (required)")
    sub.add_argument(
        "--block-time", type=float, metavar="SECONDS", help="seconds between blocks (default: 2)"
    )
    sub.add_argument(
        "--max-rows",
        type=int,
        metavar="K",
        help=f"largest square, a power of two up to 512 (default: {DEFAULT_MAX_ROWS})",
    )
    sub.add_argument(
        "--quorum",
        type=int,
        metavar="N",
        help="storage-node attestations that certify a block (default: 1)",
    )
    sub.add_argument(
        "--operator",
        action="append",
        metavar="HEX",
        help="storage-node public key whose attestations count; repeatable (without any, "
        "the producer certifies nothing: attestations need no token, their signature is "
        "checked against these keys)",
    )
    sub.add_argument(
        "--workers", type=int, metavar="W", help="encoding processes (default: CPU count)"
    )
    sub.add_argument(
        "--retention-blocks",
        type=int,
        metavar="N",
        help=f"keep the latest N blocks, 0 = all (default: {DEFAULT_RETENTION_BLOCKS})",
    )
    sub.add_argument(
        "--max-blob-bytes",
        type=int,
        metavar="BYTES",
        help="largest accepted blob (default: what a --max-rows square holds)",
    )
    sub.add_argument(
        "--dask-scheduler", metavar="H:P", help="encode on this Dask scheduler's cluster"
    )
    sub.add_argument(
        "--etcd",
        action="append",
        metavar="H:P",
        help="etcd member client address; repeatable; switches group mode on (PROTOCOL.md §12)",
    )
    sub.add_argument(
        "--replica",
        action="append",
        metavar="H:P",
        help="gRPC address of another replica of the group; repeatable",
    )
    sub.add_argument(
        "--lease-seconds",
        type=int,
        metavar="S",
        help="leader lease in whole seconds (default: 2)",
    )
    sub.set_defaults(handler="role")


def _add_storage_node(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(commands, common, "storage-node", "run a storage node")
    _add_server_flags(sub, "127.0.0.1:7001")
    sub.add_argument(
        "--producer",
        action="append",
        metavar="H:P",
        help="producer address (required); repeatable: every replica of a producer group",
    )
    sub.add_argument(
        "--peer",
        action="append",
        metavar="H:P",
        help="another storage node to repair missing cells from; repeatable",
    )
    sub.add_argument(
        "--sampler",
        action="append",
        metavar="H:P",
        help="a light client to rebuild blocks from with its held samples; repeatable",
    )
    _add_trust_flags(sub)
    sub.add_argument(
        "--key-file",
        type=Path,
        metavar="KEYFILE",
        help="attestation key; without it the node stores blocks but does not attest",
    )
    sub.add_argument(
        "--retention-blocks",
        type=int,
        metavar="N",
        help=f"keep the latest N blocks, 0 = all (default: {DEFAULT_RETENTION_BLOCKS})",
    )
    sub.add_argument(
        "--request-timeout", type=float, metavar="SECONDS", help="per-RPC timeout (default: 10)"
    )
    sub.set_defaults(handler="role")


def _add_light_client(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(commands, common, "light-client", "run a sampling light client")
    _add_server_flags(sub, "127.0.0.1:7100")
    sub.add_argument(
        "--peer",
        action="append",
        metavar="H:P",
        help="storage node to sample from; repeatable; at least one required",
    )
    _add_trust_flags(sub)
    amount = sub.add_mutually_exclusive_group()
    amount.add_argument("--samples", type=int, metavar="S", help="cells sampled per header")
    amount.add_argument(
        "--confidence",
        type=float,
        metavar="C",
        help="target probability of detecting an unavailable block (default: 0.99)",
    )
    sub.add_argument(
        "--sample-window",
        type=float,
        metavar="SECONDS",
        help="give up sampling a header after this long (default: 30)",
    )
    sub.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="backlog heights sampled at once (default: 4); new heights always go first",
    )
    sub.add_argument(
        "--request-timeout", type=float, metavar="SECONDS", help="per-RPC timeout (default: 5)"
    )
    sub.add_argument(
        "--peer-rate-limit",
        type=float,
        metavar="RPS",
        help="requests/second sent to each peer (default: 50)",
    )
    sub.add_argument(
        "--keep-samples",
        type=int,
        metavar="N",
        help="keep (and serve) the verified samples of the latest N heights (default: 1000)",
    )
    sub.add_argument(
        "--keep-samples-bytes",
        type=int,
        metavar="B",
        help="and at most this many bytes of them (default: 512 MiB)",
    )
    sub.set_defaults(handler="role")


def _add_blob(commands: Any, common: argparse.ArgumentParser) -> None:
    blob = commands.add_parser("blob", help="submit, fetch and track blobs")
    actions = blob.add_subparsers(dest="blob_command", required=True, metavar="ACTION")
    ns_help = "namespace: 0x-prefixed hex, or else the UTF-8 bytes of the text (1..29 bytes)"

    submit = _client_parser(
        actions, common, "submit", "submit a blob to a producer (the next --node on UNAVAILABLE)"
    )
    submit.add_argument("--namespace", required=True, metavar="NS", help=ns_help)
    submit.add_argument("--file", type=Path, required=True, metavar="F", help="blob contents")
    submit.add_argument(
        "--wait",
        nargs="?",
        const="included",
        choices=WAIT_CHOICES,
        metavar="STATE",
        help="poll until the blob is INCLUDED (default) or CERTIFIED; fails if REJECTED",
    )
    submit.add_argument(
        "--wait-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="give up waiting after this long (default: 120)",
    )
    submit.add_argument(
        "--auth-token-file", type=Path, metavar="F", help="file holding the producer's bearer token"
    )
    submit.set_defaults(handler="blob_submit")

    get = _client_parser(
        actions,
        common,
        "get",
        "fetch a namespace's blobs, verified against a trust root (header signature, every cell "
        "against its row commitment, every blob the header lists present)",
    )
    get.add_argument("--height", type=int, required=True, metavar="N", help="block height")
    get.add_argument("--namespace", required=True, metavar="NS", help=ns_help)
    get.add_argument(
        "--out",
        type=Path,
        metavar="F",
        help="write the blob to F (F.1, F.2, ... for further blobs); default: print it",
    )
    _add_client_trust_flags(get, required=True)
    get.set_defaults(handler="blob_get")

    status = _client_parser(actions, common, "status", "show a submitted blob's status")
    status.add_argument("--blob-hash", required=True, metavar="HEX", help="hash from blob submit")
    status.set_defaults(handler="blob_status")


def _add_header(commands: Any, common: argparse.ArgumentParser) -> None:
    header = commands.add_parser("header", help="read signed headers")
    actions = header.add_subparsers(dest="header_command", required=True, metavar="ACTION")
    get = _client_parser(
        actions, common, "get", "fetch a signed header and verify it against a trust root"
    )
    get.add_argument(
        "--height", type=int, default=0, metavar="N", help="block height (default: the latest)"
    )
    _add_client_trust_flags(get, required=True)
    get.set_defaults(handler="header_get")


def _add_certificate(commands: Any, common: argparse.ArgumentParser) -> None:
    cert = commands.add_parser("certificate", help="read DA certificates")
    actions = cert.add_subparsers(dest="certificate_command", required=True, metavar="ACTION")
    get = _client_parser(actions, common, "get", "fetch a block's DA certificate from a producer")
    get.add_argument("--height", type=int, required=True, metavar="N", help="block height")
    get.add_argument(
        "--verify",
        action="store_true",
        help="verify the aggregate signature: signers must be --operator keys, at least --quorum",
    )
    get.add_argument(
        "--operator",
        action="append",
        nargs="+",
        default=[],
        metavar="HEX",
        help="storage-node operator public key (repeatable)",
    )
    get.add_argument(
        "--quorum", type=int, default=1, metavar="N", help="with --verify: signers needed (1)"
    )
    _add_client_trust_flags(get, required=False)
    get.set_defaults(handler="certificate_get")


def _add_availability(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _client_parser(commands, common, "availability", "a light client's verdict on a height")
    sub.add_argument("--height", type=int, required=True, metavar="N", help="block height")
    sub.set_defaults(handler="availability")


def _add_health(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _client_parser(commands, common, "health", "a node's gRPC health status")
    sub.add_argument(
        "--service", default="", metavar="NAME", help="one service, e.g. da.v1.BlobService"
    )
    sub.set_defaults(handler="health")


def _client_parser(actions: Any, common: argparse.ArgumentParser, name: str, text: str) -> Any:
    sub = actions.add_parser(name, parents=[common], help=text, description=text)
    sub.add_argument(
        "--node",
        required=True,
        action="append",
        metavar="H:P",
        help="node to ask; repeatable: the next is tried when one is unreachable",
    )
    sub.add_argument("--tls-ca", type=Path, metavar="PEM", help="CA to verify the node's TLS")
    sub.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_RPC_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"per-RPC timeout (default: {DEFAULT_RPC_TIMEOUT_SECONDS:g})",
    )
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    return sub


def _add_client_trust_flags(sub: Any, *, required: bool) -> None:
    sub.add_argument(
        "--chain-id", required=required, metavar="ID", help="the chain the header must be of"
    )
    sub.add_argument(
        "--trusted-key",
        action="append",
        required=required,
        metavar="HEX",
        help="producer public key the header must be signed by; repeatable",
    )


def _add_devnet(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(
        commands,
        common,
        "devnet",
        "run producer, storage nodes and light clients on loopback with demo blobs",
    )
    sub.add_argument(
        "--data-dir", type=Path, metavar="D", help="state directory (default: a temporary one)"
    )
    sub.add_argument("--storage-nodes", type=int, metavar="N", help="storage nodes (default: 3)")
    sub.add_argument("--light-clients", type=int, metavar="N", help="light clients (default: 2)")
    sub.add_argument(
        "--blocks",
        type=int,
        metavar="N",
        help="stop after N blocks; exit 0 only if every block was available (default: run on)",
    )
    sub.add_argument(
        "--base-port", type=int, metavar="P", help="first port; nodes use the next (default: 7000)"
    )
    sub.add_argument("--chain-id", metavar="ID", help="chain identifier (default: devnet)")
    sub.add_argument(
        "--block-time", type=float, metavar="SECONDS", help="seconds between blocks (default: 2)"
    )
    sub.add_argument(
        "--max-rows", type=int, metavar="K", help=f"largest square (default: {DEFAULT_MAX_ROWS})"
    )
    sub.add_argument(
        "--producers",
        type=int,
        metavar="N",
        help="1 (default): one producer; 3: a producer group beside 3 etcd members (needs etcd)",
    )
    sub.set_defaults(handler="role")
