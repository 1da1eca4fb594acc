"""Commands that talk to running nodes, through `da.client`: blob, header, certificate,
availability, health.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from da.cli.common import EXIT_FAILURE, EXIT_OK, UsageError
from da.cli.settings import read_token_file
from da.config import check_address, decode_public_keys
from erasure.errors import ErasureError


def parse_namespace(text: str) -> bytes:
    """ "0x..." is hex; anything else is the UTF-8 bytes of the text. Normalised to 29 bytes."""
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
        trust = {
            "chain_id": args.chain_id,
            "trusted_keys": decode_public_keys("--trusted-key", args.trusted_key),
        }
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
    return {
        "blob_hash": status.blob_hash.hex(),
        "state": status.state,
        "height": status.height,
        "start_cell": status.start_cell,
        "reason": getattr(status, "reason", ""),
    }


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
        documents = [
            {
                "blob_hash": b.blob_hash.hex(),
                "start_cell": b.start_cell,
                "bytes": len(b.data),
                "data_hex": b.data.hex(),
            }
            for b in blobs
        ]
        _emit(
            args,
            {
                "height": args.height,
                "namespace": namespace.hex(),
                "verified": True,
                "blobs": documents,
            },
            [],
        )
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
    blobs = [
        {
            "namespace": e.namespace.hex(),
            "blob_hash": e.blob_hash.hex(),
            "start_cell": e.start_cell,
            "length": e.length,
        }
        for e in header.blobs
    ]
    document = {
        "height": header.height,
        "hash": signed.hash.hex(),
        "chain_id": header.chain_id,
        "time_ms": header.time_ms,
        "prev_hash": header.prev_hash.hex(),
        "k": header.k,
        "producer": header.producer.hex(),
        "signature": signed.signature.hex(),
        "commitments": [c.hex() for c in header.commitments],
        "blobs": blobs,
        "verified": True,
    }
    lines = [
        f"height {header.height} hash {signed.hash.hex()} verified",
        f"chain_id {header.chain_id} time_ms {header.time_ms} k {header.k}",
        f"prev_hash {header.prev_hash.hex()}",
        f"producer {header.producer.hex()}",
        *(
            f"blob {b['blob_hash']} namespace {b['namespace']} start_cell {b['start_cell']} "
            f"bytes {b['length']}"
            for b in blobs
        ),
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
        "height": cert.height,
        "header_hash": cert.header_hash.hex(),
        "signers": [key.hex() for key in cert.public_keys],
        "aggregate_signature": cert.aggregate_signature.hex(),
        "verified": bool(args.verify),
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
    document = {
        "height": verdict.height,
        "status": verdict.status,
        "confidence": verdict.confidence,
        "samples": verdict.samples,
    }
    line = (
        f"height {verdict.height} {verdict.status} confidence {verdict.confidence:.6f} "
        f"samples {verdict.samples}"
    )
    _emit(args, document, [line])
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 only when every --node is SERVING."""
    with _client(args, role="producers") as client:
        statuses = {node: _health(client, node, args.service) for node in args.node}
    document = {
        "service": args.service,
        "nodes": statuses,
        "serving": all(s == "SERVING" for s in statuses.values()),
    }
    _emit(args, document, [f"{node} {status}" for node, status in statuses.items()])
    return EXIT_OK if document["serving"] else EXIT_FAILURE


def _health(client: Any, node: str, service: str) -> str:
    from da.client import RemoteError

    try:
        return str(client.health(node, service))
    except RemoteError as e:
        return f"{e.code}: {e.details}"
