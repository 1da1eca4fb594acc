"""Attestations: once a block is stored whole and verified, sign its header hash and send it to
the producer's AttestationService, retrying with backoff (the producer may be restarting).

The queue lives in memory only. Why that is enough: at start the node re-queues its most recent
stored blocks (`submit_recent`), so a block stored just before a crash or restart is still
attested; the producer keeps one attestation per (height, key), so a repeat counts once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc

from da import signing
from da.backoff import Backoff
from da.certificate import Attestation
from da.header import header_hash as compute_header_hash
from da.signing import KeyPair
from da.storage_node.remotes import Remote, RemoteError, describe
from da.store import blocks, headers
from da.store.base import KeyValueStore

log = logging.getLogger(__name__)

QUEUE_BLOCKS = 1024
MAX_ATTEMPTS = 8
ATTEST_ON_START_BLOCKS = 64  # recent heights re-attested at start (well under QUEUE_BLOCKS)


def recent_blocks(store: KeyValueStore, count: int) -> list[tuple[int, bytes]]:
    """(height, header hash) of the whole blocks stored among the `count` highest heights,
    ascending."""
    head = blocks.head_height(store)
    if head == 0 or count <= 0:
        return []
    found = []
    for height in blocks.stored_heights(store, start=max(1, head - count + 1)):
        stored = headers.get_signed_header(store, height)
        if stored is not None:
            found.append((height, compute_header_hash(stored[0])))
    return found


def make_attestation(key: KeyPair, height: int, header_hash: bytes) -> Attestation:
    """`PopSchemeMPL` signature of `key` over `header_hash` (PROTOCOL.md §9.4)."""
    return Attestation(height, header_hash, key.public, signing.sign(key.secret, header_hash))


class Attester:
    """Sends attestations in the background; `submit` never blocks the ingest path (when the
    queue is full the oldest pending attestation is dropped, with a warning)."""

    def __init__(
        self,
        key: KeyPair,
        producer: Remote,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_cap_seconds: float = 30.0,
        on_result: Callable[[int, bool], None] | None = None,
        other_producers: Sequence[Remote] = (),
    ) -> None:
        self._key = key
        self._producers = [producer, *other_producers]  # a group's replicas: tried in turn
        self._max_attempts = max_attempts
        self._backoff_cap = backoff_cap_seconds
        self._on_result = on_result  # (height, accepted) after each attestation's last attempt
        self._queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(QUEUE_BLOCKS)

    def submit(self, height: int, header_hash: bytes) -> None:
        """Queue an attestation of `height` (whose header hashes to `header_hash`)."""
        if self._queue.full():
            dropped, _ = self._queue.get_nowait()
            log.warning("attestation queue full: not attesting height %d", dropped)
        self._queue.put_nowait((height, header_hash))

    async def submit_recent(self, store: KeyValueStore, count: int = ATTEST_ON_START_BLOCKS) -> int:
        """Queue `recent_blocks(store, count)` (read off the event loop); returns how many."""
        found = await asyncio.to_thread(recent_blocks, store, count)
        for height, hash_ in found:
            self.submit(height, hash_)
        return len(found)

    async def run(self) -> None:
        while True:
            height, header_hash = await self._queue.get()
            accepted = await self.attest(make_attestation(self._key, height, header_hash))
            if self._on_result is not None:
                self._on_result(height, accepted)

    async def attest(self, attestation: Attestation) -> bool:
        """Send one attestation, retrying failures; True once the producer accepted it."""
        backoff = Backoff(cap_seconds=self._backoff_cap)
        for attempt in range(1, self._max_attempts + 1):
            try:
                producer = self._producers[(attempt - 1) % len(self._producers)]
                accepted = await producer.attest(attestation)
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
