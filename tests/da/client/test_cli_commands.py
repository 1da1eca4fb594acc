"""The `da` commands that talk to nodes (blob, header, certificate, availability, health) against
the fake node of `fakes.py`: text and `--json` output, verification failures as one line
and exit 1, usage errors exit 2, `--version`, `--log-format json`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from da import cli
from da.cli import app, parser
from da.v1 import da_pb2 as pb
from erasure.layout import blob_hash, normalize_namespace
from tests.da.client.fakes import (
    BLOBS,
    CHAIN_ID,
    OPERATORS,
    PRODUCER,
    STRANGER,
    TOKEN,
    FakeNode,
    closed_port,
)

TRUST = ["--chain-id", CHAIN_ID, "--trusted-key", PRODUCER.public.hex()]


def run_json(argv: list[str], capsys: Any) -> Any:
    assert cli.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys: Any) -> str:
    err = capsys.readouterr().err
    assert err.startswith("da: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_version(capsys: Any) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("da 0.")


def test_blob_submit_tries_the_next_node_and_sends_the_token(
    node: tuple[str, FakeNode], tmp_path: Path, capsys: Any
) -> None:
    address, fake = node
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"payload")
    argv = [
        "blob",
        "submit",
        "--node",
        closed_port(),
        "--node",
        address,
        "--namespace",
        "0x0a0b",
        "--file",
        str(blob),
    ]
    assert cli.main(argv) == 1
    assert "UNAUTHENTICATED" in one_line_error(capsys)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    fake.states = [pb.PENDING, pb.INCLUDED]
    assert cli.main([*argv, "--auth-token-file", str(token), "--wait"]) == 0
    out = capsys.readouterr().out
    digest = blob_hash(b"\x0a\x0b", b"payload")
    assert f"blob_hash {digest.hex()}" in out
    assert "status INCLUDED height 1 start_cell 2" in out
    assert fake.submitted[-1] == (normalize_namespace(b"\x0a\x0b"), b"payload", f"Bearer {TOKEN}")
    document = run_json([*argv, "--auth-token-file", str(token)], capsys)
    assert document["state"] == "PENDING" and document["height"] == 0


def test_blob_status(node: tuple[str, FakeNode], capsys: Any) -> None:
    address, _ = node
    argv = ["blob", "status", "--node", address, "--blob-hash", "00" * 32]
    assert run_json(argv, capsys)["state"] == "INCLUDED"
    assert cli.main(["blob", "status", "--node", address, "--blob-hash", "00"]) == 2


def test_blob_get_verifies_and_says_so(
    node: tuple[str, FakeNode], tmp_path: Path, capsys: Any
) -> None:
    address, _ = node
    out = tmp_path / "got.bin"
    argv = ["blob", "get", "--node", address, "--height", "1", "--namespace", "beta", *TRUST]
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert out.read_bytes() == BLOBS[1][1]
    assert "verified" in capsys.readouterr().out
    document = run_json(argv[:-4] + ["--namespace", "alpha", *TRUST], capsys)
    assert document["verified"] is True
    assert [bytes.fromhex(b["data_hex"]) for b in document["blobs"]] == [BLOBS[0][1], BLOBS[2][1]]


def test_blob_get_needs_a_trust_root(node: tuple[str, FakeNode], capsys: Any) -> None:
    address, _ = node
    assert cli.main(["blob", "get", "--node", address, "--height", "1", "--namespace", "b"]) == 2
    assert "--chain-id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        ("tamper", "does not verify against its row commitment"),
        ("omit", "is listed in the header but was not served"),
        ("signer", "signature"),
    ],
)
def test_blob_get_fails_on_a_lie_and_never_says_verified(
    node: tuple[str, FakeNode], lie: str, message: str, capsys: Any
) -> None:
    address, fake = node
    setattr(fake, lie, STRANGER if lie == "signer" else True)
    argv = ["blob", "get", "--node", address, "--height", "1", "--namespace", "alpha", *TRUST]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1
    assert "verified" not in captured.out and "hello" not in captured.out


def test_header_get(node: tuple[str, FakeNode], capsys: Any) -> None:
    address, fake = node
    document = run_json(["header", "get", "--node", address, *TRUST], capsys)
    assert document["height"] == 1 and document["hash"] == fake.block.signed.hash.hex()
    assert document["chain_id"] == CHAIN_ID and document["verified"] is True
    assert len(document["blobs"]) == len(BLOBS)
    assert cli.main(["header", "get", "--node", address, "--height", "5", *TRUST]) == 1
    assert "NOT_FOUND" in one_line_error(capsys)
    wrong = ["--chain-id", "othernet", "--trusted-key", PRODUCER.public.hex()]
    assert cli.main(["header", "get", "--node", address, *wrong]) == 1
    assert "othernet" in one_line_error(capsys)


def test_certificate_get_and_verify(node: tuple[str, FakeNode], capsys: Any) -> None:
    address, fake = node
    argv = ["certificate", "get", "--node", address, "--height", "1"]
    document = run_json(argv, capsys)
    assert document["verified"] is False and len(document["signers"]) == 2
    assert cli.main(argv) == 0
    assert "NOT verified" in capsys.readouterr().out
    operators = [key.public.hex() for key in OPERATORS]
    verified = run_json([*argv, "--verify", "--operator", *operators, "--quorum", "2"], capsys)
    assert verified["verified"] is True
    assert verified["header_hash"] == fake.block.signed.hash.hex()
    assert cli.main([*argv, "--verify", "--operator", operators[2]]) == 1
    assert "is not a given operator" in one_line_error(capsys)
    assert cli.main([*argv, "--verify"]) == 2


def test_availability(node: tuple[str, FakeNode], capsys: Any) -> None:
    address, _ = node
    document = run_json(["availability", "--node", address, "--height", "1"], capsys)
    assert document == {"height": 1, "status": "AVAILABLE", "confidence": 0.99, "samples": 16}
    assert cli.main(["availability", "--node", address, "--height", "9"]) == 1
    assert "NOT_FOUND" in one_line_error(capsys)


def test_health(node: tuple[str, FakeNode], capsys: Any) -> None:
    address, _ = node
    document = run_json(["health", "--node", address], capsys)
    assert document["nodes"] == {address: "SERVING"} and document["serving"] is True
    dead = closed_port()
    assert cli.main(["health", "--node", address, "--node", dead]) == 1
    assert f"{dead} UNAVAILABLE" in capsys.readouterr().out


@pytest.mark.parametrize("role", ["producer", "storage-node", "light-client", "devnet"])
def test_long_running_roles_take_log_format_json(role: str) -> None:
    args = parser.build_parser().parse_args([role, "--log-format", "json"])
    assert args.log_format == "json"


def test_log_format_json(capsys: Any) -> None:
    app.setup_logging("info", "json")
    try:
        logging.getLogger("da.test").info("hello %s", "world")
    finally:
        app.setup_logging("info", "text")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "hello world" and line["level"] == "info"
