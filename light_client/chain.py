"""The verified header chain of the light client: every header checked (PROTOCOL.md §6) before it is
accepted, `prev_hash` links checked against both neighbours, equivocation refused.

Trust comes only from the `TrustRoot` (chain id + producer keys). A second, different header
validly signed for a height already accepted is equivocation: it is refused, logged and counted,
and the first one stays. Accepted headers are persisted so a restart keeps the chain (links and
equivocation checks survive it too).
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from enum import Enum

from da.errors import BrokenLink, HeaderRejected, InvalidHeader, TooManyRows
from da.header import SignedHeader, TrustRoot, signed_header_from_bytes, verify_signed_header
from da.metrics import LightMetrics, header_rejection_reason
from da.store.base import KeyValueStore
from da.store.headers import get_signed_header, highest_header_height, put_signed_header
from light_client.peers import RawHeader

log = logging.getLogger(__name__)

CACHED_HEADERS = 1024


class Offer(Enum):
    """What `HeaderChain.offer` did with a header."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the header already accepted at that height
    REJECTED = "rejected"  # does not link to our chain, or a square larger than we accept
    FORGED = "forged"  # not validly signed by a trusted producer, or not a well-formed header
    EQUIVOCATION = "equivocation"  # validly signed, but another header holds the height


class HeaderChain:
    """Accepted headers by height (cached, persisted in `store`) and the head height."""

    def __init__(
        self,
        trust: TrustRoot,
        store: KeyValueStore,
        *,
        max_rows: int,
        rng: random.Random,
        metrics: LightMetrics | None = None,
    ) -> None:
        self._trust = trust
        self._store = store
        self._max_rows = max_rows
        self._rng = rng
        self._metrics = metrics
        self._cache: OrderedDict[int, SignedHeader] = OrderedDict()
        self._recent_raw: dict[bytes, int] = {}  # header bytes of the cached headers -> height
        self.head = highest_header_height(store)
        if metrics is not None:
            metrics.set_head_height(self.head)

    def get(self, height: int) -> SignedHeader | None:
        """The accepted header at `height`, or None."""
        signed = self._cache.get(height)
        if signed is not None:
            return signed
        stored = get_signed_header(self._store, height) if height >= 1 else None
        if stored is None:
            return None
        signed = signed_header_from_bytes(*stored)  # ours: written only after verification
        self._remember(signed)
        return signed

    def known_height(self, raw: RawHeader) -> int | None:
        """The height of these exact header bytes and signature if they were accepted recently,
        else None.

        Every peer sends each header; this spares decoding and verifying the copies. A BLS
        signature of a message under one key is unique, so the same bytes with the same
        signature are the header already verified; with another signature they are not.
        """
        height = self._recent_raw.get(raw.header)
        if height is None:
            return None
        accepted = self._cache.get(height)
        return height if accepted is not None and accepted.signature == raw.signature else None

    def decode(self, raw: RawHeader, source: str) -> SignedHeader | None:
        """Decode untrusted bytes; None (logged, counted) if they are not a v1 header."""
        try:
            return signed_header_from_bytes(raw.header, raw.signature)
        except InvalidHeader as e:
            self._rejected("invalid_header", f"from {source}: {e}")
            return None

    def offer(self, signed: SignedHeader, source: str) -> Offer:
        """Verify `signed` and accept it, unless it is a duplicate, invalid, or equivocation."""
        height = signed.header.height
        existing = self.get(height)
        if existing is not None:
            return self._second_header(existing, signed, source)
        try:
            verify_signed_header(
                signed,
                self._trust,
                parent=self.get(height - 1),
                max_rows=self._max_rows,
                rng=self._rng,
            )
            self._check_child_link(signed)
        except HeaderRejected as e:
            self._rejected(header_rejection_reason(e), f"height {height} from {source}: {e}")
            return Offer.REJECTED if isinstance(e, BrokenLink | TooManyRows) else Offer.FORGED
        put_signed_header(self._store, height, signed.raw, signed.signature, sync=False)
        self._remember(signed)
        if height > self.head:
            self.head = height
            if self._metrics is not None:
                self._metrics.set_head_height(height)
        return Offer.ACCEPTED

    def _second_header(self, existing: SignedHeader, signed: SignedHeader, source: str) -> Offer:
        if existing.hash == signed.hash:
            if existing.signature == signed.signature:
                return Offer.DUPLICATE
            # BLS signatures are unique per (key, message): another one is not valid.
            self._rejected(
                "bad_signature",
                f"height {signed.header.height} from {source}: "
                "the accepted header with another signature",
            )
            return Offer.FORGED
        try:  # only a header the producer really signed is equivocation; the rest is forgery
            verify_signed_header(signed, self._trust, max_rows=self._max_rows, rng=self._rng)
        except HeaderRejected as e:
            detail = f"height {signed.header.height} from {source}: {e}"
            self._rejected(header_rejection_reason(e), detail)
            return Offer.FORGED
        log.error(
            "EQUIVOCATION: producer signed two headers at height %d: kept %s, refused %s (from %s)",
            signed.header.height,
            existing.hash.hex(),
            signed.hash.hex(),
            source,
        )
        if self._metrics is not None:
            self._metrics.observe_equivocation()
        return Offer.EQUIVOCATION

    def _check_child_link(self, signed: SignedHeader) -> None:
        child = self.get(signed.header.height + 1)
        if child is not None and child.header.prev_hash != signed.hash:
            raise BrokenLink(child.header.height, signed.hash, child.header.prev_hash)

    def _remember(self, signed: SignedHeader) -> None:
        self._cache[signed.header.height] = signed
        self._cache.move_to_end(signed.header.height)
        self._recent_raw[signed.raw] = signed.header.height
        while len(self._cache) > CACHED_HEADERS:
            _, evicted = self._cache.popitem(last=False)
            self._recent_raw.pop(evicted.raw, None)

    def _rejected(self, reason: str, detail: str) -> None:
        log.warning("rejected header (%s): %s", reason, detail)
        if self._metrics is not None:
            self._metrics.observe_rejected_header(reason)
