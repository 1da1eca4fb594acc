import dataclasses
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from da import signing
from da.errors import (
    BadNamespace,
    BadSignature,
    BrokenLink,
    HeaderRejected,
    InconsistentCommitments,
    InvalidHeader,
    TooManyRows,
    UntrustedProducer,
    WrongChain,
)
from da.header import (
    BlobEntry,
    Header,
    SignedHeader,
    TrustRoot,
    blob_cells,
    blob_entries_for_namespace,
    encode_header,
    find_blob_entry,
    header_from_bytes,
    header_hash,
    max_header_bytes,
    sign_header,
    signed_header_from_bytes,
    trust_root_from_hex,
    verify_signed_header,
)
from da.sampling import CellRef
from erasure.square import encode_square

KEY = signing.generate_keypair(b"\x01" * 32)
OTHER_KEY = signing.generate_keypair(b"\x02" * 32)
TRUST = TrustRoot("devnet", frozenset({KEY.public}))
IDENTITY = bytes([0xC0]) + bytes(47)  # the G1 identity: all-identity commitments are consistent
NS_A = bytes(28) + b"\x0a"
NS_B = bytes(28) + b"\x0b"


def rng() -> random.Random:
    return random.Random(2024)


def make_header(**overrides: object) -> Header:
    fields: dict[str, object] = {
        "chain_id": "devnet",
        "height": 2,
        "time_ms": 1_700_000_000_000,
        "prev_hash": b"\xaa" * 32,
        "k": 2,
        "commitments": (IDENTITY,) * 4,
        "blobs": (
            BlobEntry(NS_A, 0, 1985, b"\x01" * 32),  # 2 cells
            BlobEntry(NS_A, 2, 10, b"\x02" * 32),
            BlobEntry(NS_B, 3, 1984, b"\x03" * 32),
        ),
        "producer": KEY.public,
    }
    fields.update(overrides)
    return Header(**fields)  # type: ignore[arg-type]


# --- the byte layout --------------------------------------------------------------------------


def test_every_field_at_its_byte_position() -> None:
    commitments = tuple(bytes([0x30 + i]) * 48 for i in range(4))
    blobs = (
        BlobEntry(bytes(28) + b"\x05", 3, 1985, b"\x44" * 32),
        BlobEntry(bytes(28) + b"\x06", 5, 1, b"\x55" * 32),
    )
    producer = b"\x66" * 48
    header = Header(
        "ab", 0x0102030405060708, 0x1112131415161718, b"\x22" * 32, 2, commitments, blobs, producer
    )
    expected = (
        b"DAH1"
        + b"\x02ab"
        + b"\x01\x02\x03\x04\x05\x06\x07\x08"
        + b"\x11\x12\x13\x14\x15\x16\x17\x18"
        + b"\x22" * 32
        + b"\x00\x02"
        + b"\x30" * 48
        + b"\x31" * 48
        + b"\x32" * 48
        + b"\x33" * 48
        + b"\x00\x00\x00\x02"
        + bytes(28)
        + b"\x05"
        + b"\x00\x00\x00\x03"
        + b"\x00\x00\x07\xc1"
        + b"\x44" * 32
        + bytes(28)
        + b"\x06"
        + b"\x00\x00\x00\x05"
        + b"\x00\x00\x00\x01"
        + b"\x55" * 32
        + b"\x66" * 48
    )
    assert encode_header(header) == expected
    assert len(expected) == 4 + 3 + 8 + 8 + 32 + 2 + 4 * 48 + 4 + 2 * 69 + 48
    assert header_from_bytes(expected) == header
    assert header_hash(expected) == hashlib.sha256(expected).digest()


def test_first_block_and_empty_block() -> None:
    header = make_header(height=1, prev_hash=bytes(32), k=1, commitments=(IDENTITY,) * 2, blobs=())
    raw = encode_header(header)
    assert raw[4:5] == b"\x06" and raw[11:19] == (1).to_bytes(8, "big")
    assert header_from_bytes(raw) == header


@st.composite
def headers(draw: st.DrawFn) -> Header:
    height = draw(st.integers(1, 2**64 - 1))
    k = draw(st.sampled_from([1, 2, 4, 8]))
    namespaces = sorted(
        draw(
            st.lists(
                st.binary(min_size=29, max_size=29).filter(
                    lambda ns: ns not in (bytes(29), b"\xff" * 29)
                ),
                max_size=6,
            )
        )
    )
    blobs, cursor = [], 0
    for namespace in namespaces:
        start = cursor + draw(st.integers(0, 3))
        length = draw(st.integers(1, 3 * 1984))
        cursor = start + -(-length // 1984)
        if cursor > k * 64:
            break
        blobs.append(BlobEntry(namespace, start, length, draw(st.binary(min_size=32, max_size=32))))
    return Header(
        chain_id=draw(st.text(min_size=1, max_size=16)),
        height=height,
        time_ms=draw(st.integers(0, 2**64 - 1)),
        prev_hash=bytes(32) if height == 1 else draw(st.binary(min_size=32, max_size=32)),
        k=k,
        commitments=tuple(
            draw(st.lists(st.binary(min_size=48, max_size=48), min_size=2 * k, max_size=2 * k))
        ),
        blobs=tuple(blobs),
        producer=draw(st.binary(min_size=48, max_size=48)),
    )


@settings(max_examples=150, deadline=None)
@given(headers())
def test_round_trip(header: Header) -> None:
    raw = encode_header(header)
    decoded = header_from_bytes(raw)
    assert decoded == header
    assert encode_header(decoded) == raw


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_a_header_or_invalid_header(raw: bytes) -> None:
    try:
        header = header_from_bytes(b"DAH1" + raw)
    except InvalidHeader:
        return
    assert encode_header(header) == b"DAH1" + raw


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_header_bytes_decode_canonically_or_fail(data: st.DataObject) -> None:
    raw = bytearray(encode_header(make_header()))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255))
    try:
        header = header_from_bytes(bytes(raw))
    except InvalidHeader:
        return
    assert encode_header(header) == bytes(raw)


# --- invalid bytes ----------------------------------------------------------------------------


def pieces(header: Header) -> dict[str, bytes]:
    """The encoded header as named pieces, in wire order, so a test can replace one."""
    chain_id = header.chain_id.encode()
    return {
        "magic": b"DAH1",
        "chain_id": bytes([len(chain_id)]) + chain_id,
        "height": header.height.to_bytes(8, "big"),
        "time_ms": header.time_ms.to_bytes(8, "big"),
        "prev_hash": header.prev_hash,
        "rows": header.k.to_bytes(2, "big"),
        "commitments": b"".join(header.commitments),
        "blob_count": len(header.blobs).to_bytes(4, "big"),
        "blobs": b"".join(entry_bytes(*entry) for entry in header.blobs),
        "producer": header.producer,
    }


def entry_bytes(
    namespace: bytes, start: int, length: int, blob_hash: bytes = b"\x09" * 32
) -> bytes:
    return namespace + start.to_bytes(4, "big") + length.to_bytes(4, "big") + blob_hash


def assembled(**replacements: bytes) -> bytes:
    parts = pieces(make_header())
    if "blobs" in replacements and "blob_count" not in replacements:
        replacements["blob_count"] = (len(replacements["blobs"]) // 69).to_bytes(4, "big")
    parts.update(replacements)
    return b"".join(parts.values())


def test_assembled_matches_encoder() -> None:
    assert assembled() == encode_header(make_header())


INVALID = {
    "magic": {"magic": b"DAH2"},
    "empty chain id": {"chain_id": b"\x00"},
    "chain id over 64 bytes": {"chain_id": bytes([65]) + b"a" * 65},
    "chain id not UTF-8": {"chain_id": b"\x02\xff\xfe"},
    "height 0": {"height": bytes(8), "prev_hash": bytes(32)},
    "height 1 with a parent hash": {"height": (1).to_bytes(8, "big")},
    "zero rows": {"rows": b"\x00\x00", "commitments": b""},
    "rows not a power of two": {"rows": b"\x00\x03", "commitments": IDENTITY * 6},
    "rows over the hard limit": {"rows": (1024).to_bytes(2, "big"), "commitments": IDENTITY * 2048},
    "too few commitments": {"commitments": IDENTITY * 3},
    "zero-length blob": {"blobs": entry_bytes(NS_A, 0, 0)},
    "blob past the square": {"blobs": entry_bytes(NS_A, 127, 1985)},
    "blob starting past the square": {"blobs": entry_bytes(NS_A, 128, 1)},
    "huge start cell": {"blobs": entry_bytes(NS_A, 2**32 - 1, 1)},
    "overlapping blobs": {"blobs": entry_bytes(NS_A, 0, 1985) + entry_bytes(NS_A, 1, 1)},
    "unsorted start cells": {"blobs": entry_bytes(NS_A, 5, 1) + entry_bytes(NS_A, 0, 1)},
    "decreasing namespaces": {"blobs": entry_bytes(NS_B, 0, 1) + entry_bytes(NS_A, 1, 1)},
    "zero namespace": {"blobs": entry_bytes(bytes(29), 0, 1)},
    "0xFF namespace": {"blobs": entry_bytes(b"\xff" * 29, 0, 1)},
    "blob count too high": {"blob_count": (4).to_bytes(4, "big")},
    "blob count too low": {"blob_count": (2).to_bytes(4, "big")},
    "blob count huge": {"blob_count": b"\xff\xff\xff\xff"},
    "short producer": {"producer": KEY.public[:47]},
    "trailing byte": {"producer": KEY.public + b"\x00"},
}


@pytest.mark.parametrize("replacements", INVALID.values(), ids=INVALID.keys())
def test_invalid_header_bytes(replacements: dict[str, bytes]) -> None:
    with pytest.raises(InvalidHeader):
        header_from_bytes(assembled(**replacements))


def test_edge_cases_that_are_valid() -> None:
    last_cells = header_from_bytes(assembled(blobs=entry_bytes(NS_A, 126, 2 * 1984)))
    assert last_cells.blobs == (BlobEntry(NS_A, 126, 2 * 1984, b"\x09" * 32),)
    adjacent = entry_bytes(NS_A, 0, 1984) + entry_bytes(NS_A, 1, 1) + entry_bytes(NS_B, 1 + 1, 5)
    assert len(header_from_bytes(assembled(blobs=adjacent)).blobs) == 3
    limit = header_from_bytes(assembled(chain_id=bytes([64]) + "é".encode() * 32))
    assert limit.chain_id == "é" * 32
    gap = header_from_bytes(assembled(blobs=entry_bytes(NS_A, 10, 1) + entry_bytes(NS_B, 50, 1)))
    assert [b.start_cell for b in gap.blobs] == [10, 50]


def test_blob_count_is_bounded_by_k_before_entries_are_built() -> None:
    """Each blob starts at a new cell, so k = 2 admits at most 128 entries: a 129th is refused
    from the count alone (PROTOCOL.md §11), whatever the entries hold."""
    raw = assembled(blob_count=(129).to_bytes(4, "big"), blobs=entry_bytes(NS_A, 0, 1) * 129)
    with pytest.raises(InvalidHeader, match="exceeds the 128 cells"):
        header_from_bytes(raw)


def test_max_header_bytes_bounds_the_largest_header() -> None:
    entries = b"".join(entry_bytes(NS_A, cell, 1) for cell in range(128))
    raw = assembled(chain_id=bytes([64]) + b"c" * 64, blobs=entries)
    assert len(header_from_bytes(raw).blobs) == 128
    assert len(raw) == max_header_bytes(2)


def test_every_truncation_is_invalid() -> None:
    raw = encode_header(make_header())
    for end in range(len(raw)):
        with pytest.raises(InvalidHeader):
            header_from_bytes(raw[:end])


@pytest.mark.parametrize(
    "overrides",
    [
        {"chain_id": ""},
        {"chain_id": "x" * 65},
        {"height": 0},
        {"height": 2**64},
        {"time_ms": -1},
        {"prev_hash": b"\x01" * 31},
        {"height": 1},
        {"k": 4},
        {"commitments": (IDENTITY,) * 3 + (b"\x01",)},
        {"blobs": (BlobEntry(NS_A, 0, 1, b"\x01" * 31),)},
        {"blobs": (BlobEntry(NS_A, -1, 1, b"\x01" * 32),)},
        {"producer": b"\x01" * 47},
    ],
)
def test_header_values_are_checked_on_construction(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidHeader):
        make_header(**overrides)


# --- signed headers ---------------------------------------------------------------------------


def test_signed_header_round_trip() -> None:
    signed = sign_header(make_header(), KEY.secret)
    assert signed.raw == encode_header(signed.header)
    assert signed.hash == hashlib.sha256(signed.raw).digest()
    assert len(signed.signature) == 96
    assert signing.verify(KEY.public, signed.hash, signed.signature)
    decoded = signed_header_from_bytes(signed.raw, signed.signature)
    assert decoded == signed
    verify_signed_header(decoded, TRUST, rng=rng())


def test_signature_must_be_96_bytes() -> None:
    signed = sign_header(make_header(), KEY.secret)
    for bad in (b"", signed.signature[:95], signed.signature + b"\x00"):
        with pytest.raises(InvalidHeader):
            signed_header_from_bytes(signed.raw, bad)


def test_signed_header_raw_must_match() -> None:
    signed = sign_header(make_header(), KEY.secret)
    with pytest.raises(InvalidHeader):
        SignedHeader(make_header(time_ms=1), signed.raw, signed.signature)


def test_sign_with_a_key_that_is_not_the_producer() -> None:
    with pytest.raises(ValueError):
        sign_header(make_header(), OTHER_KEY.secret)


def test_any_changed_byte_is_rejected() -> None:
    signed = sign_header(make_header(), KEY.secret)
    for position in range(len(signed.raw)):
        raw = bytearray(signed.raw)
        raw[position] ^= 0x01
        with pytest.raises((InvalidHeader, HeaderRejected)):
            verify_signed_header(signed_header_from_bytes(bytes(raw), signed.signature), TRUST)
    for position in range(0, 96, 7):
        signature = bytearray(signed.signature)
        signature[position] ^= 0x01
        with pytest.raises(BadSignature):
            verify_signed_header(signed_header_from_bytes(signed.raw, bytes(signature)), TRUST)


def test_foreign_chain_rejected() -> None:
    signed = sign_header(make_header(chain_id="othernet"), KEY.secret)
    with pytest.raises(WrongChain) as caught:
        verify_signed_header(signed, TRUST)
    assert (caught.value.expected, caught.value.got) == ("devnet", "othernet")


def test_foreign_producer_rejected() -> None:
    signed = sign_header(make_header(producer=OTHER_KEY.public), OTHER_KEY.secret)
    with pytest.raises(UntrustedProducer):
        verify_signed_header(signed, TRUST)
    verify_signed_header(signed, TrustRoot("devnet", frozenset({KEY.public, OTHER_KEY.public})))


def test_signature_by_another_key_rejected() -> None:
    raw = encode_header(make_header())
    forged = SignedHeader(make_header(), raw, signing.sign(OTHER_KEY.secret, header_hash(raw)))
    with pytest.raises(BadSignature):
        verify_signed_header(forged, TRUST)


def test_prev_hash_link() -> None:
    parent = sign_header(make_header(height=1, prev_hash=bytes(32)), KEY.secret)
    child = sign_header(make_header(height=2, prev_hash=parent.hash), KEY.secret)
    verify_signed_header(child, TRUST, parent=parent, rng=rng())
    verify_signed_header(child, TRUST, parent=parent.header, rng=rng())
    broken = sign_header(make_header(height=2, prev_hash=b"\x01" * 32), KEY.secret)
    with pytest.raises(BrokenLink) as caught:
        verify_signed_header(broken, TRUST, parent=parent.header)
    assert caught.value.expected_prev == parent.hash
    assert caught.value.got_prev == b"\x01" * 32
    far = sign_header(make_header(height=5, prev_hash=b"\x01" * 32), KEY.secret)
    verify_signed_header(far, TRUST, parent=parent, rng=rng())  # not contiguous: no link to check


def test_too_many_rows_for_this_node() -> None:
    signed = sign_header(make_header(), KEY.secret)
    with pytest.raises(TooManyRows):
        verify_signed_header(signed, TRUST, max_rows=1)
    verify_signed_header(signed, TRUST, max_rows=2, rng=rng())


@pytest.mark.parametrize(
    "commitments",
    [
        (KEY.public, IDENTITY),  # a real G1 point next to the identity: degree 1, not < 1
        (b"\x00" * 48, IDENTITY),  # not a point at all
    ],
)
def test_inconsistent_commitments_rejected(commitments: tuple[bytes, ...]) -> None:
    header = make_header(k=1, commitments=commitments, blobs=())
    with pytest.raises(InconsistentCommitments):
        verify_signed_header(sign_header(header, KEY.secret), TRUST, rng=rng())
    constant = make_header(k=1, commitments=(KEY.public, KEY.public), blobs=())
    verify_signed_header(sign_header(constant, KEY.secret), TRUST, rng=rng())


@pytest.fixture(scope="module")
def real_square():  # type: ignore[no-untyped-def]
    return encode_square([(b"\x01", b"hello, DA"), (b"\x02", b"x" * 3000)], max_rows=1)


def test_commitments_of_a_real_square(real_square) -> None:  # type: ignore[no-untyped-def]
    header = make_header(
        k=real_square.k,
        commitments=real_square.commitments,
        blobs=real_square.blob_index,
    )
    verify_signed_header(sign_header(header, KEY.secret), TRUST, rng=rng())
    for row in range(2 * real_square.k):  # any one row's commitment replaced by another point
        commitments = list(real_square.commitments)
        commitments[row] = KEY.public
        tampered = dataclasses.replace(header, commitments=tuple(commitments))
        with pytest.raises(InconsistentCommitments):
            verify_signed_header(sign_header(tampered, KEY.secret), TRUST, rng=rng())


# --- configuration and blob index helpers -----------------------------------------------------


def test_trust_root_from_hex() -> None:
    trust = trust_root_from_hex("devnet", [KEY.public.hex(), "0x" + OTHER_KEY.public.hex()])
    assert trust == TrustRoot("devnet", frozenset({KEY.public, OTHER_KEY.public}))
    for bad in ([], ["zz"], [KEY.public.hex()[:-2]]):
        with pytest.raises(ValueError):
            trust_root_from_hex("devnet", bad)


def test_blob_index_helpers() -> None:
    header = make_header()
    assert [b.start_cell for b in blob_entries_for_namespace(header, NS_A)] == [0, 2]
    assert blob_entries_for_namespace(header, bytes(28) + b"\x0c") == ()
    with pytest.raises(BadNamespace):
        blob_entries_for_namespace(header, b"\x0a")
    assert find_blob_entry(header, b"\x03" * 32) == header.blobs[2]
    assert find_blob_entry(header, b"\x04" * 32) is None
    assert blob_cells(header.blobs[0]) == (CellRef(0, 0), CellRef(0, 1))
    assert blob_cells(BlobEntry(NS_A, 63, 1985, b"\x00" * 32)) == (CellRef(0, 63), CellRef(1, 0))
