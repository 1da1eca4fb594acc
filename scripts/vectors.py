"""Test vectors of docs/PROTOCOL.md (section "Test vectors"), computed by this implementation.

    .venv/bin/python scripts/vectors.py                          # print the markdown block
    .venv/bin/python scripts/vectors.py --update docs/PROTOCOL.md # rewrite it in place

The block sits between the markers `<!-- vectors:begin -->` and `<!-- vectors:end -->` and holds
one JSON object. `tests/test_protocol_vectors.py` recomputes it with `compute()` and compares it
with the document, so the code and the document cannot drift apart unnoticed.

Everything is deterministic: fixed blobs, fixed time, keys from fixed seeds (BLS signatures are
deterministic), no randomness.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from da import signing
from da.header import ZERO_HASH, Header, encode_header, header_hash, sign_header
from da.sampling import sample_confidence, samples_for_confidence, unrecoverable_fraction
from erasure import kzg
from erasure.commitments import dual_weights, extend_commitments
from erasure.constants import (
    BLS_MODULUS,
    BYTES_PER_ROW,
    CELLS_PER_ROW,
    DEFAULT_MAX_ROWS,
    PAYLOAD_BYTES_PER_CELL,
    PRIMITIVE_ROOT_OF_UNITY,
)
from erasure.field import extension_matrix, root_of_unity, row_points
from erasure.layout import cells_for_length, layout_blobs, pack_payload
from erasure.parallel import extend_columns
from erasure.square import encode_square

BEGIN = "<!-- vectors:begin -->"
END = "<!-- vectors:end -->"

CHAIN_ID = "vectors"
TIME_MS = 1_700_000_000_000
PRODUCER_SEED = bytes(range(32))
OPERATOR_SEEDS = (bytes([1]) * 32, bytes([2]) * 32)
CELLS_SHOWN = ((0, 0), (0, 1), (0, 3), (0, 63), (0, 64), (0, 127), (1, 0), (1, 64), (1, 127))
DOMAIN_KS = (1, 2, 4)
CONFIDENCE_CASES = ((1, 1), (1, 7), (2, 10), (4, 13), (64, 16), (64, 32), (512, 16))
SAMPLES_FOR_099_KS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def big_blob() -> bytes:
    """2048 bytes, `(7 * i + 3) mod 256`: more than one cell's 1984 payload bytes."""
    return bytes((7 * i + 3) % 256 for i in range(2048))


# Arrival order. The 29-byte (left zero-padded) namespaces sort "beta" before "alpha": the shorter
# name has a zero where the longer one has its first letter.
BLOBS: tuple[tuple[bytes, bytes, str], ...] = (
    (b"alpha", big_blob(), "bytes((7 * i + 3) % 256 for i in range(2048))"),
    (b"beta", b"hello, beta", "hello, beta"),
    (b"alpha", b"second alpha", "second alpha"),
)


# A k = 2 square, of which only the field-element side, the commitments and one parity cell are
# given (its ODS is one blob a little larger than 64 cells).
K2_NAMESPACE = b"gamma"
K2_LENGTH = CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL + 100
K2_RULE = f"bytes((11 * i + 5) % 251 for i in range({K2_LENGTH}))"
K2_CELL = (3, 100)


def k2_blob() -> bytes:
    return bytes((11 * i + 5) % 251 for i in range(K2_LENGTH))


def _hex32(value: int) -> str:
    return value.to_bytes(32, "big").hex()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _field() -> dict[str, Any]:
    return {
        "bls_modulus": _hex32(BLS_MODULUS),
        "primitive_root": PRIMITIVE_ROOT_OF_UNITY,
        "packing_example": {
            "payload_ascii": "hello, beta",
            "first_cell_first_64_bytes": pack_payload(b"hello, beta")[:64].hex(),
        },
        "row_points": {
            str(k): {
                "w": _hex32(root_of_unity(2 * k)),
                "x": [_hex32(x) for x in row_points(k)],
            }
            for k in DOMAIN_KS
        },
        "extension_matrix_k2": [[_hex32(v) for v in row] for row in extension_matrix(2)],
        "dual_weights_k2": [_hex32(v) for v in dual_weights(2)],
    }


def _square() -> tuple[dict[str, Any], Any]:
    blobs = [(namespace, data) for namespace, data, _ in BLOBS]
    layout = layout_blobs(blobs, DEFAULT_MAX_ROWS)
    square = encode_square(blobs, max_rows=DEFAULT_MAX_ROWS)
    used = max(entry.start_cell + cells_for_length(entry.length) for entry in layout.blob_index)
    size = len(layout.ods) // (layout.k * CELLS_PER_ROW)
    ods_cells = [layout.ods[i * size : (i + 1) * size] for i in range(used + 1)]  # + one unused
    vector = {
        "blobs_in_arrival_order": [
            {"namespace_ascii": ns.decode(), "data": rule, "data_sha256": _sha(data)}
            for ns, data, rule in BLOBS
        ],
        "k": square.k,
        "blob_index": [
            {
                "namespace": entry.namespace.hex(),
                "start_cell": entry.start_cell,
                "length": entry.length,
                "blob_hash": entry.blob_hash.hex(),
            }
            for entry in square.blob_index
        ],
        "ods_cell_sha256": [_sha(cell) for cell in ods_cells],
        "commitments": [c.hex() for c in square.commitments],
        "cells": [
            {
                "row": r,
                "col": c,
                "sha256": _sha(square.cell(r, c)),
                "first_32_bytes": square.cell(r, c)[:32].hex(),
                "proof": square.proof(r, c).hex(),
            }
            for r, c in CELLS_SHOWN
        ],
    }
    return vector, square


def _square_k2() -> dict[str, Any]:
    layout = layout_blobs([(K2_NAMESPACE, k2_blob())], DEFAULT_MAX_ROWS)
    k = layout.k
    original = [layout.ods[r * BYTES_PER_ROW : (r + 1) * BYTES_PER_ROW] for r in range(k)]
    rows = original + extend_columns(k, original)
    commitments = extend_commitments(k, [kzg.commit(row) for row in original])
    cells, proofs = kzg.compute_cells_and_proofs(rows[K2_CELL[0]])
    return {
        "blob": {
            "namespace_ascii": K2_NAMESPACE.decode(),
            "data": K2_RULE,
            "data_sha256": _sha(k2_blob()),
        },
        "k": k,
        "row_sha256": [_sha(row) for row in rows],
        "row_first_32_bytes": [row[:32].hex() for row in rows],
        "commitments": [c.hex() for c in commitments],
        "cell": {
            "row": K2_CELL[0],
            "col": K2_CELL[1],
            "sha256": _sha(cells[K2_CELL[1]]),
            "proof": proofs[K2_CELL[1]].hex(),
        },
    }


def _fields(raw: bytes, chain_id_bytes: int, k: int, blobs: int) -> list[list[str]]:
    """`raw` cut into its header fields (section 5.1), each `[name, hex]`."""
    sizes = [
        ("magic", 4),
        ("chain_id", 1 + chain_id_bytes),
        ("height", 8),
        ("time_ms", 8),
        ("prev_hash", 32),
        ("rows", 2),
    ]
    sizes += [(f"commitment {r}", 48) for r in range(2 * k)]
    sizes += [("blob_count", 4)] + [(f"blob {i}", 69) for i in range(blobs)] + [("producer", 48)]
    fields, offset = [], 0
    for name, size in sizes:
        fields.append([name, raw[offset : offset + size].hex()])
        offset += size
    return fields


def _headers(square: Any) -> dict[str, Any]:
    producer = signing.generate_keypair(PRODUCER_SEED)
    first = Header(
        chain_id=CHAIN_ID,
        height=1,
        time_ms=TIME_MS,
        prev_hash=ZERO_HASH,
        k=square.k,
        commitments=square.commitments,
        blobs=square.blob_index,
        producer=producer.public,
    )
    signed = sign_header(first, producer.secret)
    child = replace(first, height=2, time_ms=TIME_MS + 2000, prev_hash=signed.hash, blobs=())
    signed_child = sign_header(child, producer.secret)
    operators = [signing.generate_keypair(seed) for seed in OPERATOR_SEEDS]
    attestations = [signing.sign(op.secret, signed.hash) for op in operators]
    return {
        "producer": {
            "seed": PRODUCER_SEED.hex(),
            "secret_key": producer.secret.hex(),
            "public_key": producer.public.hex(),
        },
        "header_1": {
            "chain_id": CHAIN_ID,
            "height": 1,
            "time_ms": TIME_MS,
            "bytes": signed.raw.hex(),
            "fields": _fields(signed.raw, len(CHAIN_ID), square.k, len(square.blob_index)),
            "header_hash": header_hash(signed.raw).hex(),
            "signature": signed.signature.hex(),
        },
        "header_2": {
            "height": 2,
            "time_ms": TIME_MS + 2000,
            "note": "same square, empty blob index, prev_hash = header_1's hash",
            "bytes": encode_header(child).hex(),
            "header_hash": signed_child.hash.hex(),
            "signature": signed_child.signature.hex(),
        },
        "certificate_of_header_1": {
            "operators": [
                {"seed": seed.hex(), "public_key": op.public.hex(), "attestation": sig.hex()}
                for seed, op, sig in zip(OPERATOR_SEEDS, operators, attestations, strict=True)
            ],
            "aggregate_signature": signing.aggregate(attestations).hex(),
        },
    }


def _confidence() -> dict[str, Any]:
    return {
        "cases": [
            {
                "k": k,
                "s": s,
                "q": unrecoverable_fraction(k),
                "confidence": sample_confidence(k, s),
            }
            for k, s in CONFIDENCE_CASES
        ],
        "samples_for_0.99": {str(k): samples_for_confidence(k, 0.99) for k in SAMPLES_FOR_099_KS},
    }


def compute() -> dict[str, Any]:
    """Every vector, as the JSON object the document holds."""
    square_vector, square = _square()
    return {
        "field": _field(),
        "square": square_vector,
        "square_k2": _square_k2(),
        "headers": _headers(square),
        "confidence": _confidence(),
    }


INLINE_WIDTH = 100


def _json(value: Any, indent: str = "") -> str:
    """JSON indented by one space per level, with short lists and objects on one line."""
    flat = json.dumps(value)
    if not isinstance(value, dict | list) or len(indent) + len(flat) <= INLINE_WIDTH:
        return flat
    inner = indent + " "
    if isinstance(value, list):
        items = [inner + _json(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    items = [f"{inner}{json.dumps(key)}: {_json(item, inner)}" for key, item in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def render(vectors: dict[str, Any]) -> str:
    """The markdown block, markers included."""
    return f"{BEGIN}\n```json\n{_json(vectors)}\n```\n{END}"


def parse(document: str) -> dict[str, Any]:
    """The JSON object between the markers of `document`; ValueError if there is none."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block in the document")
    block = document[start + len(BEGIN) : end].strip()
    block = block.removeprefix("```json").removesuffix("```")
    loaded: dict[str, Any] = json.loads(block)
    return loaded


def update(path: Path) -> None:
    """Replace the block between the markers of `path` with freshly computed vectors."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block to replace")
    path.write_text(text[:start] + render(compute()) + text[end + len(END) :], encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, metavar="DOC", help="rewrite the block in DOC")
    args = parser.parse_args(argv)
    if args.update is not None:
        update(args.update)
    else:
        sys.stdout.write(render(compute()) + "\n")


if __name__ == "__main__":
    main()
