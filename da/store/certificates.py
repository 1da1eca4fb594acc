"""The producer's attestations (one per storage node and height) and DA certificates."""

from __future__ import annotations

import struct

from da.certificate import Attestation, Certificate
from da.header import HASH_BYTES
from da.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from da.store import schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.errors import CorruptValueError

_COUNT = struct.Struct(">H")


def put_attestation(store: KeyValueStore, att: Attestation, *, sync: bool = True) -> None:
    """Store one attestation, replacing an earlier one by the same key at the same height."""
    _check(att.header_hash, HASH_BYTES, "header hash")
    _check(att.signature, SIGNATURE_BYTES, "signature")
    key = schema.attestation_key(att.height, att.public_key)
    store.put(key, att.header_hash + att.signature, sync=sync)


def attestations(store: KeyValueStore, height: int) -> list[Attestation]:
    """Every stored attestation for `height`, ordered by public key."""
    prefix = schema.attestations_prefix(height)
    found = []
    for key, raw in store.iterate(prefix):
        if len(raw) != HASH_BYTES + SIGNATURE_BYTES:
            raise CorruptValueError(key, "attestation has the wrong length")
        hash_, sig = raw[:HASH_BYTES], raw[HASH_BYTES:]
        found.append(Attestation(height, hash_, key[len(prefix) :], sig))
    return found


def add_certificate_to_batch(batch: WriteBatch, cert: Certificate) -> None:
    """Queue `cert` (e.g. with the CERTIFIED blob records it implies, in the same batch)."""
    _check(cert.header_hash, HASH_BYTES, "header hash")
    _check(cert.aggregate_signature, SIGNATURE_BYTES, "aggregate signature")
    for key in cert.public_keys:
        _check(key, PUBLIC_KEY_BYTES, "public key")
    value = b"".join(
        [
            cert.header_hash,
            _COUNT.pack(len(cert.public_keys)),
            *cert.public_keys,
            cert.aggregate_signature,
        ]
    )
    batch.put(schema.certificate_key(cert.height), value)


def put_certificate(store: KeyValueStore, cert: Certificate, *, sync: bool = True) -> None:
    """Store the certificate of `cert.height`, replacing any earlier one."""
    batch = WriteBatch()
    add_certificate_to_batch(batch, cert)
    store.write(batch, sync=sync)


def get_certificate(store: KeyValueStore, height: int) -> Certificate | None:
    """The certificate of `height`, or None if none was formed."""
    key = schema.certificate_key(height)
    raw = store.get(key)
    return None if raw is None else _decode_certificate(key, height, raw)


def _decode_certificate(key: bytes, height: int, raw: bytes) -> Certificate:
    hash_end = HASH_BYTES
    keys_start = hash_end + _COUNT.size
    if len(raw) < keys_start:
        raise CorruptValueError(key, "certificate too short")
    (count,) = _COUNT.unpack_from(raw, hash_end)
    keys_end = keys_start + count * PUBLIC_KEY_BYTES
    if len(raw) != keys_end + SIGNATURE_BYTES:
        raise CorruptValueError(key, "certificate has the wrong length")
    keys = tuple(
        raw[i : i + PUBLIC_KEY_BYTES] for i in range(keys_start, keys_end, PUBLIC_KEY_BYTES)
    )
    return Certificate(height, raw[:hash_end], keys, raw[keys_end:])


def _check(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
