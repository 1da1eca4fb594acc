"""Settings: the --config TOML file merged with the flags given, composed into the roles' frozen
config dataclasses (the only place that reads TOML files and flags).
"""

from __future__ import annotations

import argparse
import importlib
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from da.api.config import READ_ONLY_MAX_MESSAGE_BYTES, WRITE_METHODS, ServerConfig
from da.cli.common import UsageError
from da.cli.parser import build_parser
from da.config import DevnetConfig, ProducerConfig, StorageNodeConfig

# Flags that may not both come from the merged settings: a flag drops the file's other one.
EXCLUSIVE_SETTINGS = (("samples", "confidence"),)


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
    fields = _pick(
        settings,
        {
            "tls_cert": "tls_cert",
            "tls_key": "tls_key",
            "rate_limit": "rate_limit_per_second",
            "rate_burst": "rate_limit_burst",
            "max_message_bytes": "max_message_bytes",
            "host_rate_limit": "host_rate_limit_per_second",
            "host_streams": "host_streams",
            "host_concurrent_calls": "host_concurrent_calls",
        },
    )
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
        **_pick(
            settings,
            {
                "metrics_port": "metrics_port",
                "metrics_address": "metrics_address",
                "block_time": "block_time_seconds",
                "lease_seconds": "lease_seconds",
                "max_rows": "max_rows",
                "quorum": "quorum",
                "workers": "workers",
                "max_blob_bytes": "max_blob_bytes",
                "dask_scheduler": "dask_scheduler",
                "retention_blocks": "retention_blocks",
                "tls_ca": "tls_ca",
            },
        ),
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
        **_pick(
            settings,
            {
                "metrics_port": "metrics_port",
                "metrics_address": "metrics_address",
                "key_file": "key_file",
                "retention_blocks": "retention_blocks",
                "max_rows": "max_rows",
                "tls_ca": "tls_ca",
                "request_timeout": "request_timeout_seconds",
            },
        ),
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
        **_pick(
            settings,
            {
                "metrics_port": "metrics_port",
                "metrics_address": "metrics_address",
                "samples": "samples",
                "confidence": "confidence",
                "sample_window": "sample_window_seconds",
                "concurrency": "concurrency",
                "request_timeout": "request_timeout_seconds",
                "peer_rate_limit": "peer_requests_per_second",
                "max_rows": "max_rows",
                "tls_ca": "tls_ca",
                "keep_samples": "keep_samples",
                "keep_samples_bytes": "keep_samples_bytes",
            },
        ),
    )


def devnet_config(settings: dict[str, Any]) -> DevnetConfig:
    return DevnetConfig(
        **_pick(
            settings,
            {
                "data_dir": "data_dir",
                "storage_nodes": "storage_nodes",
                "light_clients": "light_clients",
                "blocks": "blocks",
                "base_port": "base_port",
                "chain_id": "chain_id",
                "block_time": "block_time_seconds",
                "max_rows": "max_rows",
                "producers": "producers",
            },
        )
    )


CONFIG_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "producer": producer_config,
    "storage-node": storage_node_config,
    "light-client": light_client_config,
    "devnet": devnet_config,
}


def compose_config(argv: Sequence[str]) -> Any:
    """The validated config dataclass a role command line (with its --config file) describes."""
    return config_from_args(build_parser().parse_args(argv))


def config_from_args(args: argparse.Namespace) -> Any:
    """The validated config of the role command `args` were parsed for (with its --config)."""
    sub = _subparser(build_parser(), args.command)
    config = CONFIG_BUILDERS[args.command](settings_for(args, sub))
    config.validate()
    return config


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices[command]
    raise KeyError(command)
