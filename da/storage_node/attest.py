"""Attestations: once a block is stored whole and verified, sign its header hash and send it to
the producer's AttestationService, retrying with backoff (the producer may be restarting)."""

from __future__ import annotations

import asyncio
import logging

import grpc

from da import signing
from da.api.convert import Attestation
from da.signing import KeyPair
from da.storage_node.remotes import Backoff, Remote, RemoteError, describe

log = logging.getLogger(__name__)

QUEUE_BLOCKS = 1024
MAX_ATTEMPTS = 8


def make_attestation(key: KeyPair, height: int, header_hash: bytes) -> Attestation:
    """`PopSchemeMPL` signature of `key` over `header_hash` (DESIGN 9)."""
    return Attestation(height, header_hash, key.public, signing.sign(key.secret, header_hash))


class Attester:
    """Sends attestations in the background; `submit` never blocks the ingest path (when the
    queue is full the oldest pending attestation is dropped, with a warning)."""

    def __init__(
        self,
        key: KeyPair,
        producer: Remote,
        token: str | None,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_cap_seconds: float = 30.0,
    ) -> None:
        self._key = key
        self._producer = producer
        self._token = token
        self._max_attempts = max_attempts
        self._backoff_cap = backoff_cap_seconds
        self._queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(QUEUE_BLOCKS)

    def submit(self, height: int, header_hash: bytes) -> None:
        if self._queue.full():
            dropped, _ = self._queue.get_nowait()
            log.warning("attestation queue full: not attesting height %d", dropped)
        self._queue.put_nowait((height, header_hash))

    async def run(self) -> None:
        while True:
            height, header_hash = await self._queue.get()
            await self.attest(make_attestation(self._key, height, header_hash))

    async def attest(self, attestation: Attestation) -> bool:
        """Send one attestation, retrying failures; True once the producer accepted it."""
        backoff = Backoff(cap_seconds=self._backoff_cap)
        for attempt in range(1, self._max_attempts + 1):
            try:
                accepted = await self._producer.attest(attestation, self._token)
            except RemoteError as e:
                if _final(e):
                    log.warning(
                        "attestation of height %d refused: %s", attestation.height, describe(e)
                    )
                    return False
                log.info(
                    "attesting height %d (attempt %d): %s", attestation.height, attempt, describe(e)
                )
                await asyncio.sleep(backoff.next_delay())
                continue
            level = logging.INFO if accepted else logging.WARNING
            log.log(
                level,
                "attested height %d: %s",
                attestation.height,
                "accepted" if accepted else "not accepted by the producer",
            )
            return accepted
        log.warning(
            "giving up attesting height %d after %d attempts",
            attestation.height,
            self._max_attempts,
        )
        return False


_FINAL_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def _final(error: BaseException) -> bool:
    """A refusal that the same attestation would meet again."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in _FINAL_CODES
