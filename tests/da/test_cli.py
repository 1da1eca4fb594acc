"""The `da` command line: help texts, TOML + flag composition, keygen, role running with signals,
(the commands that talk to nodes: test_cli_client.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from da import cli
from da.api.config import READ_ONLY_MAX_MESSAGE_BYTES
from da.cli import roles, settings
from da.config import ProducerConfig, StorageNodeConfig

KEY = "ab" * 48
TOKEN = "cli-token"

COMMANDS = [
    [],
    ["keygen"],
    ["producer"],
    ["storage-node"],
    ["light-client"],
    ["blob"],
    ["blob", "submit"],
    ["blob", "get"],
    ["blob", "status"],
    ["devnet"],
    ["header", "get"],
    ["certificate", "get"],
    ["availability"],
    ["health"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "da")
def test_help_of_every_command_exits_0(command: list[str], capsys: Any) -> None:
    assert cli.main([*command, "--help"]) == 0
    assert "usage: da" in capsys.readouterr().out


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_toml_values_with_flags_overriding(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "p.toml",
        f"""
        data-dir = "{tmp_path / "data"}"
        key_file = "k.json"
        chain-id = "from-file"
        listen = "127.0.0.1:7009"
        block-time = 1
        max-rows = 16
        operator = ["{KEY}"]
    """,
    )
    config = settings.compose_config(
        ["producer", "--config", str(config_file), "--chain-id", "from-flag", "--quorum", "1"]
    )
    assert isinstance(config, ProducerConfig)
    assert config.chain_id == "from-flag"
    assert config.data_dir == tmp_path / "data" and config.key_file == Path("k.json")
    assert config.server.listen == "127.0.0.1:7009"
    assert config.block_time_seconds == 1.0 and config.max_rows == 16
    assert config.operators == (KEY,)
    assert config.max_blob_bytes == 16 * 64 * 1984


def test_producer_group_flags() -> None:
    config = settings.compose_config(
        [
            "producer",
            "--data-dir",
            "d",
            "--key-file",
            "k",
            "--chain-id",
            "c",
            "--etcd",
            "127.0.0.1:2379",
            "--etcd",
            "127.0.0.1:2380",
            "--replica",
            "127.0.0.1:7001",
            "--replica",
            "127.0.0.1:7002",
            "--lease-seconds",
            "3",
        ]
    )
    assert isinstance(config, ProducerConfig)
    assert config.etcd == ("127.0.0.1:2379", "127.0.0.1:2380")
    assert config.replicas == ("127.0.0.1:7001", "127.0.0.1:7002")
    assert config.lease_seconds == 3 and config.group


def test_storage_node_lists_and_no_token(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "s.toml",
        f"""
        data-dir = "d"
        producer = "127.0.0.1:7000"
        chain-id = "c"
        trusted-key = "{KEY}"
        peer = ["127.0.0.1:7002", "127.0.0.1:7003"]
        retention-blocks = 5
        listen = "0.0.0.0:7001"
    """,
    )
    config = settings.compose_config(
        ["storage-node", "--config", str(config_file), "--peer", "127.0.0.1:7004"]
    )
    assert isinstance(config, StorageNodeConfig)
    assert config.trusted_keys == (KEY,)
    assert config.peers == ("127.0.0.1:7004",)  # a repeatable flag replaces the file's list
    assert config.retention_blocks == 5
    # PROTOCOL.md §11: a storage node has no write method, so it listens anywhere without a token,
    # takes no token setting at all, and accepts only small requests.
    assert config.server.auth_token is None and not config.server.write_methods
    config.validate()
    assert config.server.max_message_bytes == READ_ONLY_MAX_MESSAGE_BYTES


def test_token_flags_only_where_a_write_method_is(tmp_path: Path) -> None:
    token_file = write(tmp_path / "token", f"{TOKEN}\n")
    base = ["--data-dir", "d", "--chain-id", "c", "--trusted-key", KEY]
    for argv in (
        ["storage-node", "--producer", "127.0.0.1:7000", *base],
        ["light-client", "--peer", "127.0.0.1:7000", *base],
    ):
        with pytest.raises(SystemExit):
            settings.compose_config([*argv, "--auth-token-file", str(token_file)])


def test_light_client_flag_samples_overrides_file_confidence(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "l.toml",
        f"""
        data-dir = "d"
        peer = ["127.0.0.1:7001"]
        chain-id = "c"
        trusted-key = ["{KEY}"]
        confidence = 0.999
        concurrency = 8
        request-timeout = 2.5
    """,
    )
    argv = ["light-client", "--config", str(config_file), "--samples", "30"]
    config = settings.compose_config(argv)
    assert (config.samples, config.confidence) == (30, None)
    assert config.concurrency == 8 and config.request_timeout_seconds == 2.5
    from_file = settings.compose_config(["light-client", "--config", str(config_file)])
    assert (from_file.samples, from_file.confidence) == (None, 0.999)


def test_samplers_and_keeping_samples(tmp_path: Path) -> None:
    storage_file = write(
        tmp_path / "s.toml",
        f"""
        data-dir = "d"
        producer = "127.0.0.1:7000"
        chain-id = "c"
        trusted-key = "{KEY}"
        sampler = ["127.0.0.1:7100", "127.0.0.1:7101"]
    """,
    )
    storage = settings.compose_config(["storage-node", "--config", str(storage_file)])
    assert storage.samplers == ("127.0.0.1:7100", "127.0.0.1:7101")
    flags = settings.compose_config(
        ["storage-node", "--config", str(storage_file), "--sampler", "127.0.0.1:7102"]
    )
    assert flags.samplers == ("127.0.0.1:7102",)
    light_file = write(
        tmp_path / "l.toml",
        f"""
        data-dir = "d"
        peer = ["127.0.0.1:7001"]
        chain-id = "c"
        trusted-key = ["{KEY}"]
        keep-samples = 50
        keep-samples-bytes = 1000000
    """,
    )
    light = settings.compose_config(["light-client", "--config", str(light_file)])
    assert (light.keep_samples, light.keep_samples_bytes) == (50, 1_000_000)
    default = settings.compose_config(
        ["light-client", "--config", str(light_file), "--keep-samples", "7"]
    )
    assert default.keep_samples == 7


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("bogus-key = 1", "unknown key 'bogus-key'"),
        ('storage-nodes = "three"', "expected an integer"),
        ("blocks = 2.5", "expected an integer"),
        ("storage-nodes = 0", "storage_nodes must be >= 1"),
        ("blocks = [", "not valid TOML"),
    ],
)
def test_bad_config_files_exit_2_with_one_line(
    tmp_path: Path, capsys: Any, toml: str, message: str
) -> None:
    config_file = write(tmp_path / "d.toml", toml)
    assert cli.main(["devnet", "--config", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["producer", "--data-dir", "d", "--key-file", "k"], "missing --chain-id"),
        (
            [
                "producer",
                "--data-dir",
                "d",
                "--key-file",
                "k",
                "--chain-id",
                "c",
                "--listen",
                "0.0.0.0:7000",
            ],
            "beyond loopback",
        ),
        (["devnet", "--config", "/nonexistent.toml"], "cannot read config file"),
        (["light-client", "--samples", "3", "--confidence", "0.9"], "not allowed with"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: Any) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_keygen_writes_key_file_and_prints_public_key(tmp_path: Path, capsys: Any) -> None:
    from da.signing import read_key_file

    out = tmp_path / "node.key"
    assert cli.main(["keygen", "--out", str(out)]) == 0
    public_hex = capsys.readouterr().out.strip()
    assert len(public_hex) == 96 and bytes.fromhex(public_hex) == read_key_file(out).public
    assert cli.main(["keygen", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


# --- running roles --------------------------------------------------------------------------


@pytest.fixture
def fake_role(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def run_forever(config: Any) -> None:
        seen["config"] = config
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    async def devnet_run(config: Any) -> int:
        seen["devnet"] = config
        return 3

    for name, run in (("fake_producer", run_forever), ("fake_devnet", devnet_run)):
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(run=run))
    monkeypatch.setitem(roles.ROLE_MODULES, "producer", "fake_producer")
    monkeypatch.setitem(roles.ROLE_MODULES, "devnet", "fake_devnet")
    return seen


def test_sigterm_cancels_the_role_and_exits_0(fake_role: dict[str, Any]) -> None:
    argv = ["producer", "--data-dir", "d", "--key-file", "k", "--chain-id", "c"]
    assert cli.main(argv) == 0
    assert fake_role["cancelled"] and fake_role["config"].chain_id == "c"


def test_devnet_exit_code_is_returned(fake_role: dict[str, Any]) -> None:
    assert cli.main(["devnet", "--blocks", "2", "--storage-nodes", "1"]) == 3
    assert fake_role["devnet"].blocks == 2 and fake_role["devnet"].storage_nodes == 1
