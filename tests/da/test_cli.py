"""The `da` command line: help texts, TOML + flag composition, keygen, role running with signals,
and the blob commands against a fake node built with create_server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from da import cli
from da.api.server import BLOB_SERVICE, HEADER_SERVICE, ServerConfig, create_server, stop_server
from da.config import ProducerConfig, StorageNodeConfig
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

KEY = "ab" * 48
TOKEN = "cli-token"

COMMANDS = [
    [], ["keygen"], ["producer"], ["storage-node"], ["light-client"], ["blob"],
    ["blob", "submit"], ["blob", "get"], ["blob", "status"], ["devnet"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "da")
def test_help_of_every_command_exits_0(command: list[str], capsys: Any) -> None:
    assert cli.main([*command, "--help"]) == 0
    assert "usage: da" in capsys.readouterr().out


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_toml_values_with_flags_overriding(tmp_path: Path) -> None:
    config_file = write(tmp_path / "p.toml", f"""
        data-dir = "{tmp_path / 'data'}"
        key_file = "k.json"
        chain-id = "from-file"
        listen = "127.0.0.1:7009"
        block-time = 1
        max-rows = 16
        operator = ["{KEY}"]
    """)
    config = cli.compose_config(
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
    config = cli.compose_config([
        "producer", "--data-dir", "d", "--key-file", "k", "--chain-id", "c",
        "--etcd", "127.0.0.1:2379", "--etcd", "127.0.0.1:2380",
        "--replica", "127.0.0.1:7001", "--replica", "127.0.0.1:7002", "--lease-seconds", "3",
    ])
    assert isinstance(config, ProducerConfig)
    assert config.etcd == ("127.0.0.1:2379", "127.0.0.1:2380")
    assert config.replicas == ("127.0.0.1:7001", "127.0.0.1:7002")
    assert config.lease_seconds == 3 and config.group


def test_storage_node_lists_and_tokens(tmp_path: Path) -> None:
    token_file = write(tmp_path / "token", f"  {TOKEN}\n")
    config_file = write(tmp_path / "s.toml", f"""
        data-dir = "d"
        producer = "127.0.0.1:7000"
        chain-id = "c"
        trusted-key = "{KEY}"
        peer = ["127.0.0.1:7002", "127.0.0.1:7003"]
        retention-blocks = 5
        auth-token-file = "{token_file}"
        listen = "0.0.0.0:7001"
    """)
    config = cli.compose_config(
        ["storage-node", "--config", str(config_file), "--peer", "127.0.0.1:7004"]
    )
    assert isinstance(config, StorageNodeConfig)
    assert config.trusted_keys == (KEY,)
    assert config.peers == ("127.0.0.1:7004",)  # a repeatable flag replaces the file's list
    assert config.retention_blocks == 5
    assert config.server.auth_token == TOKEN and config.producer_auth_token == TOKEN


def test_light_client_flag_samples_overrides_file_confidence(tmp_path: Path) -> None:
    config_file = write(tmp_path / "l.toml", f"""
        data-dir = "d"
        peer = ["127.0.0.1:7001"]
        chain-id = "c"
        trusted-key = ["{KEY}"]
        confidence = 0.999
        concurrency = 8
        request-timeout = 2.5
    """)
    config = cli.compose_config(["light-client", "--config", str(config_file), "--samples", "30"])
    assert (config.samples, config.confidence) == (30, None)
    assert config.concurrency == 8 and config.request_timeout_seconds == 2.5
    from_file = cli.compose_config(["light-client", "--config", str(config_file)])
    assert (from_file.samples, from_file.confidence) == (None, 0.999)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('bogus-key = 1', "unknown key 'bogus-key'"),
        ('storage-nodes = "three"', "expected an integer"),
        ('blocks = 2.5', "expected an integer"),
        ('storage-nodes = 0', "storage_nodes must be >= 1"),
        ('blocks = [', "not valid TOML"),
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
            ["producer", "--data-dir", "d", "--key-file", "k", "--chain-id", "c",
             "--listen", "0.0.0.0:7000"],
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
    monkeypatch.setitem(cli.ROLE_MODULES, "producer", "fake_producer")
    monkeypatch.setitem(cli.ROLE_MODULES, "devnet", "fake_devnet")
    return seen


def test_sigterm_cancels_the_role_and_exits_0(fake_role: dict[str, Any]) -> None:
    argv = ["producer", "--data-dir", "d", "--key-file", "k", "--chain-id", "c"]
    assert cli.main(argv) == 0
    assert fake_role["cancelled"] and fake_role["config"].chain_id == "c"


def test_devnet_exit_code_is_returned(fake_role: dict[str, Any]) -> None:
    assert cli.main(["devnet", "--blocks", "2", "--storage-nodes", "1"]) == 3
    assert fake_role["devnet"].blocks == 2 and fake_role["devnet"].storage_nodes == 1


# --- blob commands against a fake node ------------------------------------------------------


class FakeNode(da_pb2_grpc.BlobServiceServicer, da_pb2_grpc.HeaderServiceServicer):
    """Serves one block made of real encoded blobs; `tamper` corrupts served cells."""

    def __init__(self, signed: Any, square: Any) -> None:
        self.signed, self.square, self.tamper, self.submitted = signed, square, False, []

    async def SubmitBlob(self, request: Any, context: Any) -> Any:
        from erasure.layout import blob_hash

        self.submitted.append((request.namespace, request.data))
        digest = blob_hash(request.namespace, request.data)
        return pb.SubmitBlobResponse(blob_hash=digest, status=pb.BlobStatus(state=pb.PENDING))

    async def GetBlobStatus(self, request: Any, context: Any) -> Any:
        return pb.BlobStatus(state=pb.INCLUDED, height=1, start_cell=2)

    async def GetHeader(self, request: Any, context: Any) -> Any:
        return pb.SignedHeader(header=self.signed.raw, signature=self.signed.signature)

    async def GetBlobs(self, request: Any, context: Any) -> Any:
        from da.header import blob_cells, blob_entries_for_namespace

        blobs = []
        for entry in blob_entries_for_namespace(self.signed.header, request.namespace):
            cells = []
            for ref in blob_cells(entry):
                data = bytearray(self.square.cell(ref.row, ref.col))
                if self.tamper:
                    data[-1] ^= 1
                proof = self.square.proof(ref.row, ref.col)
                cells.append(pb.Cell(row=ref.row, col=ref.col, data=bytes(data), proof=proof))
            blobs.append(pb.Blob(namespace=entry.namespace, blob_hash=entry.blob_hash,
                                 start_cell=entry.start_cell, cells=cells))
        return pb.GetBlobsResponse(blobs=blobs)


BLOBS = [(b"alpha", b"hello, available world\n" * 200), (b"beta", bytes(range(256)) * 30)]


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[str, FakeNode, str]]:
    from da.header import Header, sign_header
    from da.signing import generate_keypair
    from erasure.square import encode_square

    square = encode_square(BLOBS, max_rows=4)
    keypair = generate_keypair(b"\x07" * 32)
    header = Header(chain_id="test", height=1, time_ms=1, prev_hash=bytes(32), k=square.k,
                    commitments=square.commitments, blobs=square.blob_index,
                    producer=keypair.public)
    fake = FakeNode(sign_header(header, keypair.secret), square)
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}

    async def start() -> None:
        started["server"], started["port"] = await create_server(
            ServerConfig(listen="127.0.0.1:0", auth_token=TOKEN),
            [(da_pb2_grpc.add_BlobServiceServicer_to_server, fake),
             (da_pb2_grpc.add_HeaderServiceServicer_to_server, fake)],
            rpc_metrics=None,
            service_names=[BLOB_SERVICE, HEADER_SERVICE],
        )

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    yield f"127.0.0.1:{started['port']}", fake, keypair.public.hex()
    asyncio.run_coroutine_threadsafe(stop_server(started["server"], grace=None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def test_blob_submit_requires_the_token(node: Any, tmp_path: Path, capsys: Any) -> None:
    address, fake, _ = node
    blob = write(tmp_path / "blob.bin", "payload")
    argv = ["blob", "submit", "--node", address, "--namespace", "0x0a0b", "--file", str(blob)]
    assert cli.main(argv) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    token = write(tmp_path / "token", TOKEN)
    assert cli.main([*argv, "--auth-token-file", str(token), "--wait"]) == 0
    out = capsys.readouterr().out
    assert "blob_hash " in out and "status INCLUDED height 1 start_cell 2" in out
    assert fake.submitted[-1] == (bytes(27) + b"\x0a\x0b", b"payload")


def test_blob_status(node: Any, capsys: Any) -> None:
    address, _, _ = node
    assert cli.main(["blob", "status", "--node", address, "--blob-hash", "00" * 32]) == 0
    assert "status INCLUDED" in capsys.readouterr().out
    assert cli.main(["blob", "status", "--node", address, "--blob-hash", "00"]) == 2


def test_blob_get_verifies_cells(node: Any, tmp_path: Path, capsys: Any) -> None:
    address, fake, producer_hex = node
    out = tmp_path / "got.bin"
    argv = ["blob", "get", "--node", address, "--height", "1", "--namespace", "beta"]
    fake.tamper = False
    assert cli.main([*argv, "--out", str(out), "--trusted-key", producer_hex]) == 0
    assert out.read_bytes() == BLOBS[1][1]
    assert "verified" in capsys.readouterr().out
    alpha = ["blob", "get", "--node", address, "--height", "1", "--namespace", "alpha"]
    assert cli.main(alpha) == 0
    assert "hello, available world" in capsys.readouterr().out
    fake.tamper = True
    try:
        assert cli.main(argv) == 1
    finally:
        fake.tamper = False
    assert "does not verify" in capsys.readouterr().err
    assert cli.main([*argv, "--trusted-key", KEY]) == 1
    assert "not trusted" in capsys.readouterr().err
