"""Attestations and DA certificates (PROTOCOL.md §14): the values a storage node signs and the
producer aggregates, shared by the wire converters (`da.api.convert`), the producer's store
(`da.store.certificates`), the producer's `Certifier` and the rollup client.

An attestation says "I hold and verified the whole block with this header hash"; a certificate is
the BLS aggregate of a quorum of them, checkable against the signers' public keys alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attestation:
    """A storage node's signature over `header_hash`: it holds and verified the whole block."""

    height: int
    header_hash: bytes  # 32
    public_key: bytes  # 48
    signature: bytes  # 96


@dataclass(frozen=True, slots=True)
class Certificate:
    """An aggregate of attestations over `header_hash` by `public_keys` (in signer-set order)."""

    height: int
    header_hash: bytes  # 32
    public_keys: tuple[bytes, ...]  # 48 each
    aggregate_signature: bytes  # 96
