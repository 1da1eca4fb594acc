"""Producer attestations and certificates."""

from __future__ import annotations

import pytest

from da.certificate import Attestation, Certificate
from da.store import certificates
from da.store.base import KeyValueStore

HASH = b"\x01" * 32


def key(i: int) -> bytes:
    return bytes([i]) * 48


def test_attestations_by_height(store: KeyValueStore) -> None:
    for i in [3, 1, 2]:
        certificates.put_attestation(store, Attestation(5, HASH, key(i), bytes([i]) * 96))
    certificates.put_attestation(store, Attestation(6, HASH, key(9), b"\x09" * 96))
    got = certificates.attestations(store, 5)
    assert [a.public_key for a in got] == [key(1), key(2), key(3)]
    assert got[0] == Attestation(5, HASH, key(1), b"\x01" * 96)
    assert certificates.attestations(store, 7) == []


def test_certificate_round_trip(store: KeyValueStore) -> None:
    cert = Certificate(5, HASH, (key(2), key(1)), b"\x05" * 96)
    certificates.put_certificate(store, cert)
    assert certificates.get_certificate(store, 5) == cert
    assert certificates.get_certificate(store, 6) is None


def test_rejects_bad_sizes(store: KeyValueStore) -> None:
    with pytest.raises(ValueError):
        certificates.put_certificate(store, Certificate(1, HASH, (b"short",), b"\x05" * 96))
    with pytest.raises(ValueError):
        certificates.put_attestation(store, Attestation(1, HASH, key(1), b"short"))
