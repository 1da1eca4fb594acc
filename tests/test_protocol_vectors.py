"""The test vectors of docs/PROTOCOL.md ("Test vectors") against the code: the code must reproduce
every value in the document, and the values must mean what the document says they mean (header
bytes that decode to the stated fields, signatures that verify, the confidence formula)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from da import signing
from da.header import (
    ZERO_HASH,
    TrustRoot,
    header_from_bytes,
    signed_header_from_bytes,
    verify_signed_header,
)
from erasure import kzg
from erasure.constants import BYTES_PER_ROW, DEFAULT_MAX_ROWS
from erasure.layout import blob_hash, layout_blobs
from erasure.parallel import extend_columns

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "PROTOCOL.md"


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "vectors.py"
    spec = importlib.util.spec_from_file_location("protocol_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vectors = _load_generator()


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return vectors.parse(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fresh() -> dict[str, Any]:
    return vectors.compute()


def _differences(documented: Any, computed: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as paths (`square.cells[2].proof`)."""
    if isinstance(documented, dict) and isinstance(computed, dict):
        keys = sorted(set(documented) | set(computed))
        return [
            d
            for key in keys
            for d in _differences(documented.get(key), computed.get(key), f"{path}.{key}")
        ]
    if isinstance(documented, list) and isinstance(computed, list):
        if len(documented) != len(computed):
            return [f"{path}: {len(documented)} entries documented, {len(computed)} computed"]
        return [
            d
            for i, (a, b) in enumerate(zip(documented, computed, strict=True))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    if documented == computed:
        return []
    return [f"{path}: documented {_short(documented)}, code {_short(computed)}"]


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@pytest.mark.parametrize("section", ["field", "square", "square_k2", "headers", "confidence"])
def test_the_code_reproduces_every_documented_vector(
    doc: dict[str, Any], fresh: dict[str, Any], section: str
) -> None:
    assert section in doc, f"docs/PROTOCOL.md has no {section!r} vectors"
    differences = _differences(doc[section], fresh[section], section)
    assert not differences, (
        "docs/PROTOCOL.md and the code disagree (regenerate with "
        "`.venv/bin/python scripts/vectors.py --update docs/PROTOCOL.md` only if the protocol "
        "changed on purpose):\n" + "\n".join(differences[:20])
    )


def test_the_documented_header_bytes_decode_to_the_documented_fields(doc: dict[str, Any]) -> None:
    square, headers = doc["square"], doc["headers"]
    first = headers["header_1"]
    raw = bytes.fromhex(first["bytes"])
    header = header_from_bytes(raw)
    assert raw[:4] == b"DAH1"
    assert (header.chain_id, header.height, header.time_ms) == (
        first["chain_id"],
        first["height"],
        first["time_ms"],
    )
    assert header.prev_hash == ZERO_HASH
    assert header.k == square["k"]
    assert [c.hex() for c in header.commitments] == square["commitments"]
    assert [
        {
            "namespace": e.namespace.hex(),
            "start_cell": e.start_cell,
            "length": e.length,
            "blob_hash": e.blob_hash.hex(),
        }
        for e in header.blobs
    ] == square["blob_index"]
    assert header.producer.hex() == headers["producer"]["public_key"]
    assert hashlib.sha256(raw).hexdigest() == first["header_hash"]
    assert "".join(hex_bytes for _, hex_bytes in first["fields"]) == first["bytes"]


def test_the_documented_signatures_verify(doc: dict[str, Any]) -> None:
    headers = doc["headers"]
    producer = bytes.fromhex(headers["producer"]["public_key"])
    secret = bytes.fromhex(headers["producer"]["secret_key"])
    assert signing.public_key(secret) == producer
    assert signing.generate_keypair(bytes.fromhex(headers["producer"]["seed"])).secret == secret
    trust = TrustRoot(headers["header_1"]["chain_id"], frozenset({producer}))
    first, second = (
        signed_header_from_bytes(bytes.fromhex(h["bytes"]), bytes.fromhex(h["signature"]))
        for h in (headers["header_1"], headers["header_2"])
    )
    verify_signed_header(first, trust)
    verify_signed_header(second, trust, parent=first)  # prev_hash links to header 1
    assert second.header.prev_hash.hex() == headers["header_1"]["header_hash"]
    assert second.hash.hex() == headers["header_2"]["header_hash"]
    cert = headers["certificate_of_header_1"]
    keys = [bytes.fromhex(op["public_key"]) for op in cert["operators"]]
    for key, op in zip(keys, cert["operators"], strict=True):
        assert signing.verify(key, first.hash, bytes.fromhex(op["attestation"]))
    assert signing.verify_aggregate(keys, first.hash, bytes.fromhex(cert["aggregate_signature"]))


def test_the_documented_square_has_the_documented_properties(doc: dict[str, Any]) -> None:
    square = doc["square"]
    hashes = []  # blob hashes in arrival order
    for blob in square["blobs_in_arrival_order"]:
        data = next(d for _, d, rule in vectors.BLOBS if rule == blob["data"])
        assert hashlib.sha256(data).hexdigest() == blob["data_sha256"]
        hashes.append(blob_hash(blob["namespace_ascii"].encode(), data).hex())
    # Sorted by the 29-byte namespace ("beta" first: padded, it is the smaller), then arrival.
    assert [e["blob_hash"] for e in square["blob_index"]] == [hashes[1], hashes[0], hashes[2]]
    cells = {(c["row"], c["col"]): c for c in square["cells"]}
    # Cells 0..63 of an extended row are the original row itself.
    for col in (0, 1, 3):
        assert cells[(0, col)]["sha256"] == square["ods_cell_sha256"][col]
    # At k = 1 the column polynomials are constants: the parity row repeats row 0.
    assert square["k"] == 1 and square["commitments"][0] == square["commitments"][1]
    assert cells[(1, 0)]["sha256"] == cells[(0, 0)]["sha256"]
    assert cells[(1, 64)]["proof"] == cells[(0, 64)]["proof"]


def test_extended_commitments_equal_the_commitments_of_the_extended_rows(
    doc: dict[str, Any],
) -> None:
    """The k = 2 vector's parity commitments, computed by MSM, are what committing the parity
    rows gives."""
    square = doc["square_k2"]
    layout = layout_blobs([(vectors.K2_NAMESPACE, vectors.k2_blob())], DEFAULT_MAX_ROWS)
    original = [layout.ods[r * BYTES_PER_ROW : (r + 1) * BYTES_PER_ROW] for r in range(layout.k)]
    rows = original + extend_columns(layout.k, original)
    assert [hashlib.sha256(row).hexdigest() for row in rows] == square["row_sha256"]
    assert [kzg.commit(row).hex() for row in rows] == square["commitments"]


def test_the_documented_confidence_follows_the_formula(doc: dict[str, Any]) -> None:
    for case in doc["confidence"]["cases"]:
        k, s = case["k"], case["s"]
        q = (k + 1) * 65 / (2 * k * 128)
        assert case["q"] == pytest.approx(q, rel=1e-15)
        assert case["confidence"] == pytest.approx(1 - (1 - q) ** s, rel=1e-12)
    for k_text, s in doc["confidence"]["samples_for_0.99"].items():
        q = (int(k_text) + 1) * 65 / (2 * int(k_text) * 128)
        assert 1 - (1 - q) ** s >= 0.99 > 1 - (1 - q) ** (s - 1)
