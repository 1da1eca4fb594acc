"""DA certificates: storage nodes' attestations over a block's header hash, aggregated once a
quorum of distinct keys attested (PROTOCOL.md §9.4).

Contract of `Attest`:
- the block must be stored here (else NOT_FOUND) and `header_hash` must be its header's hash;
- a signature that does not verify is INVALID_ARGUMENT (`BadAttestation`): the storage node's
  attester treats it as final, which is right, since resending the same bytes cannot help;
- `Attest` takes no bearer token (PROTOCOL.md §11): it is authenticated by its BLS signature, and
  only the configured `operators`' keys count; any other key is PERMISSION_DENIED (`NotAnOperator`).
  Without `operators` no key counts, so the producer certifies nothing (it says so at start):
  counting any key would let anyone fill the quorum;
- attesting twice with one key is accepted and counts once.

Why the rogue-key attack does not apply to the certificates formed here: each attestation's
signature is verified on its own before it is stored, so every key in a signer set really
signed `header_hash`; the aggregate is then a plain `PopSchemeMPL.aggregate` of those.
"""

from __future__ import annotations

import asyncio
import logging

from da import signing
from da.certificate import Attestation, Certificate
from da.errors import UnknownHeight
from da.header import Header
from da.metrics import ProducerMetrics
from da.producer.errors import BadAttestation, NoCertificate, NotAnOperator
from da.store import blobs as blob_store
from da.store import blocks as block_store
from da.store import certificates as cert_store
from da.store import headers
from da.store.base import KeyValueStore, WriteBatch
from da.store.blobs import BlobRecord, BlobState

log = logging.getLogger(__name__)


class Certifier:
    """Checks and stores attestations, and forms each height's certificate at the quorum."""

    def __init__(
        self,
        store: KeyValueStore,
        metrics: ProducerMetrics,
        *,
        quorum: int,
        operators: frozenset[bytes] = frozenset(),
    ) -> None:
        if quorum < 1:
            raise ValueError(f"quorum must be >= 1, got {quorum}")
        self._store = store
        self._metrics = metrics
        self._quorum = quorum
        self._operators = operators
        self._lock = asyncio.Lock()  # one certificate per height, formed once

    async def attest(self, att: Attestation) -> bool:
        """Check and store one attestation; True if it counts towards the quorum."""
        header, expected_hash = await asyncio.to_thread(self._stored_header, att.height)
        if att.header_hash != expected_hash:
            raise BadAttestation(att.height, "header_hash is not the stored header's hash")
        if att.public_key not in self._operators:
            log.info(
                "attestation for height %d by non-operator key %s refused",
                att.height,
                att.public_key.hex()[:16],
            )
            raise NotAnOperator(att.public_key)
        if not await asyncio.to_thread(
            signing.verify, att.public_key, att.header_hash, att.signature
        ):
            raise BadAttestation(att.height, "the signature does not verify over header_hash")
        async with self._lock:
            await asyncio.to_thread(cert_store.put_attestation, self._store, att)
            await self._certify_if_quorum(header, expected_hash)
        return True

    async def certificate(self, height: int) -> Certificate:
        """The certificate of `height`; raises `NoCertificate` until one is formed."""
        cert = await asyncio.to_thread(cert_store.get_certificate, self._store, height)
        if cert is None:
            raise NoCertificate(height)
        return cert

    def _stored_header(self, height: int) -> tuple[Header, bytes]:
        stored = headers.get_decoded_header(self._store, height) if height else None
        if stored is None or not block_store.has_block(self._store, height):
            raise UnknownHeight(height)
        return stored.header, stored.hash

    async def _certify_if_quorum(self, header: Header, expected_hash: bytes) -> None:
        height = header.height
        if await asyncio.to_thread(cert_store.get_certificate, self._store, height) is not None:
            return
        found = await asyncio.to_thread(cert_store.attestations, self._store, height)
        counted = [a for a in found if a.header_hash == expected_hash and self._counts(a)]
        if len(counted) < self._quorum:
            return
        cert = Certificate(
            height,
            expected_hash,
            tuple(a.public_key for a in counted),
            signing.aggregate(a.signature for a in counted),
        )
        await asyncio.to_thread(self._store.write, certificate_batch(cert, header), sync=True)
        self._metrics.observe_certificate()
        log.info(
            "certificate for height %d: %d signers (quorum %d), %d blobs certified",
            height,
            len(counted),
            self._quorum,
            len(header.blobs),
        )

    def _counts(self, att: Attestation) -> bool:
        return att.public_key in self._operators


def certificate_batch(cert: Certificate, header: Header) -> WriteBatch:
    """ONE batch: the certificate and the CERTIFIED record of every blob of its block."""
    batch = WriteBatch()
    cert_store.add_certificate_to_batch(batch, cert)
    for entry in header.blobs:
        record = BlobRecord(BlobState.CERTIFIED, header.height, entry.start_cell)
        blob_store.add_blob_record_to_batch(batch, entry.blob_hash, record)
    return batch
