"""The `da` command (DESIGN 9): argparse subcommands, TOML config files, logging, signals.

The only place that reads TOML files and flags and composes them into config dataclasses. Roles
are imported lazily and run as `asyncio.run(module.run(config))`; SIGTERM/SIGINT cancel the run
task and the command exits 0. Exit codes: 0 success, 1 runtime or RPC failure (the message
shows the gRPC code), 2 usage or configuration error. Expected failures print one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import signal
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from da.api.client import DEFAULT_RPC_TIMEOUT_SECONDS, describe_rpc_error
from da.api.config import (
    DEFAULT_HOST_CONCURRENT_CALLS,
    DEFAULT_HOST_RATE_LIMIT_PER_SECOND,
    DEFAULT_HOST_STREAMS,
    DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PER_SECOND,
    READ_ONLY_MAX_MESSAGE_BYTES,
    WRITE_METHODS,
    ServerConfig,
)
from da.config import (
    DEFAULT_RETENTION_BLOCKS,
    ConfigError,
    DevnetConfig,
    ProducerConfig,
    StorageNodeConfig,
    check_address,
    decode_public_keys,
)
from da.errors import DAError, KeyFileError
from erasure.constants import DEFAULT_MAX_ROWS
from erasure.errors import ErasureError

log = logging.getLogger("da")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
WAIT_CHOICES = ("included", "certified")

# Role modules, imported only when their command runs (`async def run(config)`).
ROLE_MODULES = {
    "producer": "da.producer.node",
    "storage-node": "da.storage_node.node",
    "light-client": "light_client.node",
    "devnet": "da.devnet",
}
# Flags that may not both come from the merged settings: a flag drops the file's other one.
EXCLUSIVE_SETTINGS = (("samples", "confidence"),)


class UsageError(Exception):
    """A missing or malformed command-line or config-file setting (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `da` console script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or an argparse usage error (2)
        return int(e.code or 0)
    _setup_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    try:
        return int(args.handler(args))
    except (UsageError, ConfigError, KeyFileError) as e:
        return _fail(EXIT_USAGE, str(e))
    except grpc.aio.AioRpcError as e:
        return _fail(EXIT_FAILURE, f"RPC failed: {describe_rpc_error(e)}")
    except (DAError, ErasureError, OSError) as e:
        return _fail(EXIT_FAILURE, str(e))
    except KeyboardInterrupt:
        return EXIT_OK


def _fail(code: int, message: str) -> int:
    print(f"da: error: {message}", file=sys.stderr)
    return code


def _setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record, LOG_DATE_FORMAT),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


def version() -> str:
    """The installed package's version (`da --version`)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("da-sampling")
    except PackageNotFoundError:
        return "unknown (not installed)"


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The full `da` parser. Settings of config-file commands default to SUPPRESS, so the parsed
    namespace holds only flags actually given (they override the file)."""
    parser = argparse.ArgumentParser(
        prog="da", description="Data availability sampling layer: producer, storage node, "
        "light client, blob client and a local devnet."
    )
    parser.add_argument("--version", action="version", version=f"da {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="log verbosity (default: info)"
    )
    common.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text",
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
        name, parents=[common], help=help_text, description=help_text,
        argument_default=argparse.SUPPRESS,
        epilog="Every flag can also be set in the --config TOML file, keyed by the flag name "
        "without dashes (e.g. listen = \"127.0.0.1:7001\", trusted-key = [\"HEX\"]); "
        "flags given on the command line override the file.",
    )
    sub.add_argument("--config", type=Path, metavar="FILE.toml", help="TOML file of settings")
    return sub


def _add_server_flags(sub: Any, default_listen: str, *, takes_writes: bool = False) -> None:
    """The gRPC server's flags; the token ones only for a role with a write method (DESIGN 13:
    only the producer's SubmitBlob takes a token)."""
    sub.add_argument("--data-dir", type=Path, metavar="D", help="state directory (required)")
    sub.add_argument(
        "--listen", metavar="H:P",
        help=f"gRPC listen address, host:port (default: {default_listen})",
    )
    sub.add_argument(
        "--metrics-port", type=int, metavar="M",
        help="serve Prometheus /metrics on port M (default: no metrics endpoint)",
    )
    sub.add_argument(
        "--metrics-address", metavar="ADDR",
        help="address the /metrics endpoint listens on (default: 127.0.0.1; 0.0.0.0 in a "
        "container so Prometheus can scrape it)",
    )
    if takes_writes:
        sub.add_argument(
            "--auth-token-file", type=Path, metavar="F",
            help="file holding the bearer token SubmitBlob requires",
        )
        sub.add_argument(
            "--insecure", action="store_true",
            help="allow listening beyond loopback without an auth token",
        )
    sub.add_argument("--tls-cert", type=Path, metavar="PEM", help="TLS certificate chain")
    sub.add_argument(
        "--tls-key", type=Path, metavar="PEM", help="TLS private key (with --tls-cert)"
    )
    sub.add_argument(
        "--rate-limit", type=float, metavar="RPS",
        help=f"requests/second allowed per client connection, 0 = unlimited "
        f"(default: {DEFAULT_RATE_LIMIT_PER_SECOND:g})",
    )
    sub.add_argument(
        "--rate-burst", type=int, metavar="N",
        help=f"most requests a client may send at once (default: {DEFAULT_RATE_LIMIT_BURST})",
    )
    sub.add_argument(
        "--host-rate-limit", type=float, metavar="RPS",
        help=f"requests/second allowed per client host, all its connections together, 0 = "
        f"unlimited (default: {DEFAULT_HOST_RATE_LIMIT_PER_SECOND:g})",
    )
    sub.add_argument(
        "--host-streams", type=int, metavar="N",
        help=f"open header streams per client host (default: {DEFAULT_HOST_STREAMS})",
    )
    sub.add_argument(
        "--host-concurrent-calls", type=int, metavar="N",
        help=f"calls in progress per client host (default: {DEFAULT_HOST_CONCURRENT_CALLS})",
    )
    sub.add_argument(
        "--max-message-bytes", type=int, metavar="BYTES",
        help="largest gRPC request accepted (default: 32 MiB for the producer, which takes "
        "blobs; 1 MiB for storage nodes and light clients, which take small requests only)",
    )
    sub.add_argument(
        "--tls-ca", type=Path, metavar="PEM",
        help="CA certificates to verify the TLS of every node this one connects to "
        "(default: plaintext channels)",
    )


def _add_trust_flags(sub: Any) -> None:
    sub.add_argument("--chain-id", metavar="ID", help="chain identifier (required)")
    sub.add_argument(
        "--trusted-key", action="append", metavar="HEX",
        help="producer public key (96 hex chars) to trust; repeatable; at least one required",
    )
    sub.add_argument(
        "--max-rows", type=int, metavar="K",
        help=f"reject headers whose square has more than K rows (default: {DEFAULT_MAX_ROWS})",
    )


def _add_keygen(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "keygen", parents=[common], help="create a BLS key file and print its public key",
        description="Create a BLS12-381 key pair, write it to KEYFILE (mode 0600) and print the "
        "public key as 96 hex characters.",
    )
    sub.add_argument("--out", type=Path, required=True, metavar="KEYFILE", help="file to write")
    sub.add_argument("--force", action="store_true", help="overwrite an existing KEYFILE")
    sub.set_defaults(handler=cmd_keygen)


def _add_producer(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(commands, common, "producer", "run the block producer")
    _add_server_flags(sub, "127.0.0.1:7000", takes_writes=True)
    sub.add_argument("--key-file", type=Path, metavar="KEYFILE", help="signing key (required)")
    sub.add_argument("--chain-id", metavar="ID", help="chain identifier (required)")
    sub.add_argument(
        "--block-time", type=float, metavar="SECONDS", help="seconds between blocks (default: 2)"
    )
    sub.add_argument(
        "--max-rows", type=int, metavar="K",
        help=f"largest square, a power of two up to 512 (default: {DEFAULT_MAX_ROWS})",
    )
    sub.add_argument(
        "--quorum", type=int, metavar="N",
        help="storage-node attestations that certify a block (default: 1)",
    )
    sub.add_argument(
        "--operator", action="append", metavar="HEX",
        help="storage-node public key whose attestations count; repeatable (without any, "
        "the producer certifies nothing: attestations need no token, their signature is "
        "checked against these keys)",
    )
    sub.add_argument(
        "--workers", type=int, metavar="W", help="encoding processes (default: CPU count)"
    )
    sub.add_argument(
        "--retention-blocks", type=int, metavar="N",
        help=f"keep the latest N blocks, 0 = all (default: {DEFAULT_RETENTION_BLOCKS})",
    )
    sub.add_argument(
        "--max-blob-bytes", type=int, metavar="BYTES",
        help="largest accepted blob (default: what a --max-rows square holds)",
    )
    sub.add_argument(
        "--dask-scheduler", metavar="H:P", help="encode on this Dask scheduler's cluster"
    )
    sub.add_argument(
        "--etcd", action="append", metavar="H:P",
        help="etcd member client address; repeatable; switches group mode on (DESIGN 11)",
    )
    sub.add_argument(
        "--replica", action="append", metavar="H:P",
        help="gRPC address of another replica of the group; repeatable",
    )
    sub.add_argument(
        "--lease-seconds", type=int, metavar="S",
        help="leader lease in whole seconds (default: 2)",
    )
    sub.set_defaults(handler=cmd_role)


def _add_storage_node(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(commands, common, "storage-node", "run a storage node")
    _add_server_flags(sub, "127.0.0.1:7001")
    sub.add_argument(
        "--producer", action="append", metavar="H:P",
        help="producer address (required); repeatable: every replica of a producer group",
    )
    sub.add_argument(
        "--peer", action="append", metavar="H:P",
        help="another storage node to repair missing cells from; repeatable",
    )
    sub.add_argument(
        "--sampler", action="append", metavar="H:P",
        help="a light client to rebuild blocks from with its held samples; repeatable",
    )
    _add_trust_flags(sub)
    sub.add_argument(
        "--key-file", type=Path, metavar="KEYFILE",
        help="attestation key; without it the node stores blocks but does not attest",
    )
    sub.add_argument(
        "--retention-blocks", type=int, metavar="N",
        help=f"keep the latest N blocks, 0 = all (default: {DEFAULT_RETENTION_BLOCKS})",
    )
    sub.add_argument(
        "--request-timeout", type=float, metavar="SECONDS", help="per-RPC timeout (default: 10)"
    )
    sub.set_defaults(handler=cmd_role)


def _add_light_client(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(commands, common, "light-client", "run a sampling light client")
    _add_server_flags(sub, "127.0.0.1:7100")
    sub.add_argument(
        "--peer", action="append", metavar="H:P",
        help="storage node to sample from; repeatable; at least one required",
    )
    _add_trust_flags(sub)
    amount = sub.add_mutually_exclusive_group()
    amount.add_argument("--samples", type=int, metavar="S", help="cells sampled per header")
    amount.add_argument(
        "--confidence", type=float, metavar="C",
        help="target probability of detecting an unavailable block (default: 0.99)",
    )
    sub.add_argument(
        "--sample-window", type=float, metavar="SECONDS",
        help="give up sampling a header after this long (default: 30)",
    )
    sub.add_argument(
        "--concurrency", type=int, metavar="N",
        help="backlog heights sampled at once (default: 4); new heights always go first",
    )
    sub.add_argument(
        "--request-timeout", type=float, metavar="SECONDS", help="per-RPC timeout (default: 5)"
    )
    sub.add_argument(
        "--peer-rate-limit", type=float, metavar="RPS",
        help="requests/second sent to each peer (default: 50)",
    )
    sub.add_argument(
        "--keep-samples", type=int, metavar="N",
        help="keep (and serve) the verified samples of the latest N heights (default: 1000)",
    )
    sub.add_argument(
        "--keep-samples-bytes", type=int, metavar="B",
        help="and at most this many bytes of them (default: 512 MiB)",
    )
    sub.set_defaults(handler=cmd_role)


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
        "--wait", nargs="?", const="included", choices=WAIT_CHOICES, metavar="STATE",
        help="poll until the blob is INCLUDED (default) or CERTIFIED; fails if REJECTED",
    )
    submit.add_argument(
        "--wait-timeout", type=float, default=120.0, metavar="SECONDS",
        help="give up waiting after this long (default: 120)",
    )
    submit.add_argument(
        "--auth-token-file", type=Path, metavar="F", help="file holding the producer's bearer token"
    )
    submit.set_defaults(handler=cmd_blob_submit)

    get = _client_parser(
        actions, common, "get",
        "fetch a namespace's blobs, verified against a trust root (header signature, every cell "
        "against its row commitment, every blob the header lists present)",
    )
    get.add_argument("--height", type=int, required=True, metavar="N", help="block height")
    get.add_argument("--namespace", required=True, metavar="NS", help=ns_help)
    get.add_argument(
        "--out", type=Path, metavar="F",
        help="write the blob to F (F.1, F.2, ... for further blobs); default: print it",
    )
    _add_client_trust_flags(get, required=True)
    get.set_defaults(handler=cmd_blob_get)

    status = _client_parser(actions, common, "status", "show a submitted blob's status")
    status.add_argument("--blob-hash", required=True, metavar="HEX", help="hash from blob submit")
    status.set_defaults(handler=cmd_blob_status)


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
    get.set_defaults(handler=cmd_header_get)


def _add_certificate(commands: Any, common: argparse.ArgumentParser) -> None:
    cert = commands.add_parser("certificate", help="read DA certificates")
    actions = cert.add_subparsers(dest="certificate_command", required=True, metavar="ACTION")
    get = _client_parser(actions, common, "get", "fetch a block's DA certificate from a producer")
    get.add_argument("--height", type=int, required=True, metavar="N", help="block height")
    get.add_argument(
        "--verify", action="store_true",
        help="verify the aggregate signature: signers must be --operator keys, at least --quorum",
    )
    get.add_argument(
        "--operator", action="append", nargs="+", default=[], metavar="HEX",
        help="storage-node operator public key (repeatable)",
    )
    get.add_argument(
        "--quorum", type=int, default=1, metavar="N", help="with --verify: signers needed (1)"
    )
    _add_client_trust_flags(get, required=False)
    get.set_defaults(handler=cmd_certificate_get)


def _add_availability(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _client_parser(commands, common, "availability", "a light client's verdict on a height")
    sub.add_argument("--height", type=int, required=True, metavar="N", help="block height")
    sub.set_defaults(handler=cmd_availability)


def _add_health(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _client_parser(commands, common, "health", "a node's gRPC health status")
    sub.add_argument(
        "--service", default="", metavar="NAME", help="one service, e.g. da.v1.BlobService"
    )
    sub.set_defaults(handler=cmd_health)


def _client_parser(actions: Any, common: argparse.ArgumentParser, name: str, text: str) -> Any:
    sub = actions.add_parser(name, parents=[common], help=text, description=text)
    sub.add_argument(
        "--node", required=True, action="append", metavar="H:P",
        help="node to ask; repeatable: the next is tried when one is unreachable",
    )
    sub.add_argument("--tls-ca", type=Path, metavar="PEM", help="CA to verify the node's TLS")
    sub.add_argument(
        "--timeout", type=float, default=DEFAULT_RPC_TIMEOUT_SECONDS, metavar="SECONDS",
        help=f"per-RPC timeout (default: {DEFAULT_RPC_TIMEOUT_SECONDS:g})",
    )
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    return sub


def _add_client_trust_flags(sub: Any, *, required: bool) -> None:
    sub.add_argument(
        "--chain-id", required=required, metavar="ID", help="the chain the header must be of"
    )
    sub.add_argument(
        "--trusted-key", action="append", required=required, metavar="HEX",
        help="producer public key the header must be signed by; repeatable",
    )


def _add_devnet(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = _role_parser(
        commands, common, "devnet",
        "run producer, storage nodes and light clients on loopback with demo blobs",
    )
    sub.add_argument(
        "--data-dir", type=Path, metavar="D", help="state directory (default: a temporary one)"
    )
    sub.add_argument("--storage-nodes", type=int, metavar="N", help="storage nodes (default: 3)")
    sub.add_argument("--light-clients", type=int, metavar="N", help="light clients (default: 2)")
    sub.add_argument(
        "--blocks", type=int, metavar="N",
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
        "--producers", type=int, metavar="N",
        help="1 (default): one producer; 3: a producer group beside 3 etcd members (needs etcd)",
    )
    sub.set_defaults(handler=cmd_role)


# --- settings: TOML file + flags ------------------------------------------------------------


def settings_for(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Merged settings by argparse dest: the --config file's values, overridden by flags."""
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "handler", "command")}
    path = getattr(args, "config", None)
    from_file = load_config_file(path, parser) if path is not None else {}
    for pair in EXCLUSIVE_SETTINGS:
        given = [name for name in pair if name in flags]
        for name in pair:
            if given and name not in given:
                from_file.pop(name, None)
    return {**from_file, **flags}


def load_config_file(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The TOML file's settings keyed by argparse dest; keys are flag names (dashes or
    underscores); an unknown key or a value of the wrong type is a `UsageError`."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from e
    actions = _config_actions(parser)
    settings = {}
    for key, value in document.items():
        action = actions.get("--" + key.replace("_", "-"))
        if action is None:
            raise UsageError(f"config file {path}: unknown key {key!r}")
        settings[action.dest] = _coerce(action, f"{path}: {key}", value)
    return settings


def _config_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    skip = {"config", "help", "log_level", "log_format"}
    return {
        option: action
        for action in parser._actions  # noqa: SLF001 - argparse exposes no public list
        if action.dest not in skip
        for option in action.option_strings
        if option.startswith("--")
    }


def _coerce(action: argparse.Action, where: str, value: Any) -> Any:
    if isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false")
        return value
    if isinstance(action, argparse._AppendAction):  # noqa: SLF001
        values = value if isinstance(value, list) else [value]
        return [_coerce_scalar(action, where, item) for item in values]
    return _coerce_scalar(action, where, value)


def _coerce_scalar(action: argparse.Action, where: str, value: Any) -> Any:
    convert: Callable[[Any], Any] = action.type or str  # type: ignore[assignment]
    numeric = convert in (int, float)
    if isinstance(value, bool) or (numeric and isinstance(value, float) and convert is int):
        raise UsageError(f"{where}: expected {_type_name(convert)}, got {value!r}")
    if isinstance(value, str) or (numeric and isinstance(value, int | float)):
        try:
            return convert(value)
        except (TypeError, ValueError):
            pass
    raise UsageError(f"{where}: expected {_type_name(convert)}, got {value!r}")


def _type_name(convert: Any) -> str:
    return {int: "an integer", float: "a number"}.get(convert, "a string")


def _require(settings: dict[str, Any], dest: str) -> Any:
    if settings.get(dest) in (None, []):
        flag = "--" + dest.replace("_", "-")
        raise UsageError(f"missing {flag} (or {flag[2:]} in the --config file)")
    return settings[dest]


def _pick(settings: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Dataclass keyword arguments {field: value} for the settings present ({dest: field})."""
    return {field: settings[dest] for dest, field in mapping.items() if dest in settings}


def read_token_file(path: Path) -> str:
    """The bearer token in `path` (surrounding whitespace stripped); `UsageError` if unusable."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read auth token file {path}: {e}") from e
    if not token:
        raise UsageError(f"auth token file {path} is empty")
    return token


# --- composing configs ----------------------------------------------------------------------


def server_config(
    settings: dict[str, Any], default_listen: str, *, takes_writes: bool = False
) -> ServerConfig:
    """The role's gRPC server; `takes_writes` only for the producer (SubmitBlob and its token).
    Read-only roles accept requests of at most `READ_ONLY_MAX_MESSAGE_BYTES` by default."""
    token_file = settings.get("auth_token_file") if takes_writes else None
    fields = _pick(settings, {
        "tls_cert": "tls_cert", "tls_key": "tls_key",
        "rate_limit": "rate_limit_per_second", "rate_burst": "rate_limit_burst",
        "max_message_bytes": "max_message_bytes",
        "host_rate_limit": "host_rate_limit_per_second", "host_streams": "host_streams",
        "host_concurrent_calls": "host_concurrent_calls",
    })
    if takes_writes:
        fields.update(_pick(settings, {"insecure": "insecure"}))
    else:
        fields.setdefault("max_message_bytes", READ_ONLY_MAX_MESSAGE_BYTES)
    return ServerConfig(
        listen=settings.get("listen", default_listen),
        auth_token=read_token_file(token_file) if token_file is not None else None,
        write_methods=WRITE_METHODS if takes_writes else frozenset(),
        **fields,
    )


def producer_config(settings: dict[str, Any]) -> ProducerConfig:
    return ProducerConfig(
        data_dir=_require(settings, "data_dir"),
        key_file=_require(settings, "key_file"),
        chain_id=_require(settings, "chain_id"),
        server=server_config(settings, "127.0.0.1:7000", takes_writes=True),
        operators=tuple(settings.get("operator", ())),
        etcd=tuple(settings.get("etcd", ())),
        replicas=tuple(settings.get("replica", ())),
        **_pick(settings, {
            "metrics_port": "metrics_port", "metrics_address": "metrics_address",
            "block_time": "block_time_seconds", "lease_seconds": "lease_seconds",
            "max_rows": "max_rows", "quorum": "quorum", "workers": "workers",
            "max_blob_bytes": "max_blob_bytes", "dask_scheduler": "dask_scheduler",
            "retention_blocks": "retention_blocks", "tls_ca": "tls_ca",
        }),
    )


def storage_node_config(settings: dict[str, Any]) -> StorageNodeConfig:
    server = server_config(settings, "127.0.0.1:7001")
    given = _require(settings, "producer")
    producers = (given,) if isinstance(given, str) else tuple(given)
    return StorageNodeConfig(
        data_dir=_require(settings, "data_dir"),
        producer=producers[0] if producers else "",
        producers=producers,
        chain_id=_require(settings, "chain_id"),
        trusted_keys=tuple(_require(settings, "trusted_key")),
        server=server,
        peers=tuple(settings.get("peer", ())),
        samplers=tuple(settings.get("sampler", ())),
        **_pick(settings, {
            "metrics_port": "metrics_port", "metrics_address": "metrics_address",
            "key_file": "key_file",
            "retention_blocks": "retention_blocks", "max_rows": "max_rows",
            "tls_ca": "tls_ca", "request_timeout": "request_timeout_seconds",
        }),
    )


def light_client_config(settings: dict[str, Any]) -> Any:
    # Loaded by name like the role modules: the `da` package must not depend on `light_client`
    # (import-linter contract); this command line is the one place where every role meets.
    config_class = importlib.import_module("light_client.config").LightClientConfig
    return config_class(
        data_dir=_require(settings, "data_dir"),
        peers=tuple(_require(settings, "peer")),
        chain_id=_require(settings, "chain_id"),
        trusted_keys=tuple(_require(settings, "trusted_key")),
        server=server_config(settings, "127.0.0.1:7100"),
        **_pick(settings, {
            "metrics_port": "metrics_port", "metrics_address": "metrics_address",
            "samples": "samples", "confidence": "confidence",
            "sample_window": "sample_window_seconds", "concurrency": "concurrency",
            "request_timeout": "request_timeout_seconds",
            "peer_rate_limit": "peer_requests_per_second", "max_rows": "max_rows",
            "tls_ca": "tls_ca",
            "keep_samples": "keep_samples", "keep_samples_bytes": "keep_samples_bytes",
        }),
    )


def devnet_config(settings: dict[str, Any]) -> DevnetConfig:
    return DevnetConfig(**_pick(settings, {
        "data_dir": "data_dir", "storage_nodes": "storage_nodes",
        "light_clients": "light_clients", "blocks": "blocks", "base_port": "base_port",
        "chain_id": "chain_id", "block_time": "block_time_seconds", "max_rows": "max_rows",
        "producers": "producers",
    }))


CONFIG_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "producer": producer_config,
    "storage-node": storage_node_config,
    "light-client": light_client_config,
    "devnet": devnet_config,
}


def compose_config(argv: Sequence[str]) -> Any:
    """The validated config dataclass a role command line (with its --config file) describes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return _config_from_args(args, _subparser(parser, args.command))


def _config_from_args(args: argparse.Namespace, sub: argparse.ArgumentParser) -> Any:
    config = CONFIG_BUILDERS[args.command](settings_for(args, sub))
    config.validate()
    return config


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices[command]
    raise KeyError(command)


# --- running roles --------------------------------------------------------------------------


def cmd_role(args: argparse.Namespace) -> int:
    """Compose and validate the role's config, then run it until it ends or a signal arrives."""
    config = _config_from_args(args, _subparser(build_parser(), args.command))
    try:
        module = importlib.import_module(ROLE_MODULES[args.command])
    except ImportError as e:
        raise DAError(f"{args.command} is not available in this build: {e}") from e
    log.info("starting %s: %s", args.command, config)
    return asyncio.run(run_until_signal(lambda: module.run(config)))


async def run_until_signal(start: Callable[[], Any]) -> int:
    """Run `start()` (a coroutine, or a plain result) as a task; SIGTERM/SIGINT cancel it and
    yield exit code 0. An int result is the exit code (devnet); None means 0."""
    loop = asyncio.get_running_loop()
    result = start()
    if not inspect.isawaitable(result):
        return int(result or EXIT_OK)
    task = asyncio.ensure_future(_as_coroutine(result))
    signalled: list[int] = []

    def on_signal(signum: int) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        signalled.append(signum)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return int(await task or EXIT_OK)
    except asyncio.CancelledError:
        if signalled:
            return EXIT_OK
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


# --- keygen ---------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from da.signing import generate_keypair, write_key_file

    keypair = generate_keypair()
    write_key_file(args.out, keypair, overwrite=args.force)
    print(keypair.public.hex())
    return EXIT_OK




# --- commands that talk to nodes (through da.client) ----------------------------------------


def parse_namespace(text: str) -> bytes:
    """"0x..." is hex; anything else is the UTF-8 bytes of the text. Normalised to 29 bytes."""
    from erasure.layout import normalize_namespace

    if text.startswith(("0x", "0X")):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raise UsageError(f"namespace {text!r} is not valid hex") from None
    else:
        raw = text.encode()
    try:
        return normalize_namespace(raw)
    except ErasureError as e:
        raise UsageError(f"namespace {text!r}: {e}") from None


def _client(args: argparse.Namespace, *, role: str, token: str | None = None) -> Any:
    """A `DAClient` over `--node` addresses used as `role` ("producers", "storage",
    "light_clients"), with the trust root when the command has one."""
    from da.client import DAClient

    for node in args.node:
        check_address("--node", node)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    trust: dict[str, Any] = {}
    if getattr(args, "trusted_key", None):
        if not args.chain_id:
            raise UsageError("--trusted-key needs --chain-id")
        trust = {"chain_id": args.chain_id,
                 "trusted_keys": decode_public_keys("--trusted-key", args.trusted_key)}
    return DAClient(
        **{role: list(args.node)}, token=token, tls_ca=args.tls_ca, timeout=args.timeout, **trust
    )


def _emit(args: argparse.Namespace, document: dict[str, Any], lines: Sequence[str]) -> None:
    """`document` as one JSON object with `--json`, else `lines` of text."""
    if args.json:
        print(json.dumps(document, sort_keys=True))
    else:
        for line in lines:
            print(line)


def _status_document(status: Any) -> dict[str, Any]:
    return {"blob_hash": status.blob_hash.hex(), "state": status.state, "height": status.height,
            "start_cell": status.start_cell, "reason": getattr(status, "reason", "")}


def _status_line(document: dict[str, Any]) -> str:
    line = f"status {document['state']}"
    if document["height"]:
        line += f" height {document['height']} start_cell {document['start_cell']}"
    if document["reason"]:
        line += f" reason {document['reason']!r}"
    return line


def cmd_blob_submit(args: argparse.Namespace) -> int:
    namespace = parse_namespace(args.namespace)
    token = read_token_file(args.auth_token_file) if args.auth_token_file else None
    try:
        data = args.file.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {args.file}: {e.strerror or e}") from e
    with _client(args, role="producers", token=token) as client:
        receipt = client.submit(namespace, data, wait=args.wait, timeout=args.wait_timeout)
    document = _status_document(receipt)
    _emit(args, document, [f"blob_hash {receipt.blob_hash.hex()}", _status_line(document)])
    return EXIT_OK


def cmd_blob_status(args: argparse.Namespace) -> int:
    try:
        blob_hash = bytes.fromhex(args.blob_hash.removeprefix("0x"))
    except ValueError:
        raise UsageError(f"blob hash {args.blob_hash!r} is not hex") from None
    if len(blob_hash) != 32:
        raise UsageError("a blob hash is 32 bytes (64 hex characters)")
    with _client(args, role="producers") as client:
        document = _status_document(client.status(blob_hash))
    _emit(args, document, [_status_line(document)])
    return EXIT_OK


def cmd_blob_get(args: argparse.Namespace) -> int:
    """Prints "verified" only for blobs the client verified; any failure exits 1, nothing shown."""
    namespace = parse_namespace(args.namespace)
    if args.height < 1:
        raise UsageError("--height must be >= 1")
    with _client(args, role="storage") as client:
        blobs = client.get_blobs(args.height, namespace)
    if args.json:
        documents = [{"blob_hash": b.blob_hash.hex(), "start_cell": b.start_cell,
                      "bytes": len(b.data), "data_hex": b.data.hex()} for b in blobs]
        _emit(args, {"height": args.height, "namespace": namespace.hex(), "verified": True,
                     "blobs": documents}, [])
        return EXIT_OK
    _print_blobs(blobs, args.out)
    return EXIT_OK


def _print_blobs(blobs: Sequence[Any], out: Path | None) -> None:
    if not blobs:
        print("no blobs in this namespace at this height (verified)", file=sys.stderr)
    for index, blob in enumerate(blobs):
        summary = f"blob {blob.blob_hash.hex()} start_cell {blob.start_cell} bytes {len(blob.data)}"
        print(f"{summary} verified", file=sys.stderr if out is None else sys.stdout)
        if out is None:
            _print_data(blob.data)
        else:
            target = out if index == 0 else out.with_name(f"{out.name}.{index}")
            target.write_bytes(blob.data)
            print(f"wrote {target}")


def _print_data(data: bytes) -> None:
    try:
        print(data.decode("utf-8"))
    except UnicodeDecodeError:
        print(data.hex())


def cmd_header_get(args: argparse.Namespace) -> int:
    if args.height < 0:
        raise UsageError("--height must be >= 0 (0: the latest)")
    with _client(args, role="storage") as client:
        signed = client.header(args.height)
    header = signed.header
    blobs = [{"namespace": e.namespace.hex(), "blob_hash": e.blob_hash.hex(),
              "start_cell": e.start_cell, "length": e.length} for e in header.blobs]
    document = {
        "height": header.height, "hash": signed.hash.hex(), "chain_id": header.chain_id,
        "time_ms": header.time_ms, "prev_hash": header.prev_hash.hex(), "k": header.k,
        "producer": header.producer.hex(), "signature": signed.signature.hex(),
        "commitments": [c.hex() for c in header.commitments], "blobs": blobs, "verified": True,
    }
    lines = [
        f"height {header.height} hash {signed.hash.hex()} verified",
        f"chain_id {header.chain_id} time_ms {header.time_ms} k {header.k}",
        f"prev_hash {header.prev_hash.hex()}",
        f"producer {header.producer.hex()}",
        *(f"blob {b['blob_hash']} namespace {b['namespace']} start_cell {b['start_cell']} "
          f"bytes {b['length']}" for b in blobs),
    ]
    _emit(args, document, lines)
    return EXIT_OK


def cmd_certificate_get(args: argparse.Namespace) -> int:
    operators = [key for group in args.operator for key in group]
    if args.verify and not operators:
        raise UsageError("--verify needs the operators' keys (--operator HEX ...)")
    if operators and not args.verify:
        raise UsageError("--operator is used only with --verify")
    if args.height < 1:
        raise UsageError("--height must be >= 1")
    keys = decode_public_keys("--operator", operators) if args.verify else None
    with _client(args, role="producers") as client:
        cert = client.certificate(args.height, keys, quorum=args.quorum)
    document = {
        "height": cert.height, "header_hash": cert.header_hash.hex(),
        "signers": [key.hex() for key in cert.public_keys],
        "aggregate_signature": cert.aggregate_signature.hex(), "verified": bool(args.verify),
    }
    verdict = "verified" if args.verify else "NOT verified (give --verify --operator HEX ...)"
    lines = [
        f"certificate {cert.height} header_hash {cert.header_hash.hex()} "
        f"signers {len(cert.public_keys)} {verdict}",
        *(f"signer {key}" for key in document["signers"]),
    ]
    _emit(args, document, lines)
    return EXIT_OK


def cmd_availability(args: argparse.Namespace) -> int:
    if args.height < 1:
        raise UsageError("--height must be >= 1")
    with _client(args, role="light_clients") as client:
        verdict = client.availability(args.height)
    document = {"height": verdict.height, "status": verdict.status,
                "confidence": verdict.confidence, "samples": verdict.samples}
    line = (f"height {verdict.height} {verdict.status} confidence {verdict.confidence:.6f} "
            f"samples {verdict.samples}")
    _emit(args, document, [line])
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 only when every --node is SERVING."""
    with _client(args, role="producers") as client:
        statuses = {node: _health(client, node, args.service) for node in args.node}
    document = {"service": args.service, "nodes": statuses,
                "serving": all(s == "SERVING" for s in statuses.values())}
    _emit(args, document, [f"{node} {status}" for node, status in statuses.items()])
    return EXIT_OK if document["serving"] else EXIT_FAILURE


def _health(client: Any, node: str, service: str) -> str:
    from da.client import RemoteError

    try:
        return str(client.health(node, service))
    except RemoteError as e:
        return f"{e.code}: {e.details}"
