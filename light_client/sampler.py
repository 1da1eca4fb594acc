"""Sampling one height (PROTOCOL.md §7): fetch the drawn cells from random peers and verify them.

Rules that close known attacks, each enforced here:
- a coordinate that errors, times out or fails verification is retried, the SAME coordinate, at
  another peer; it is never replaced by a fresh draw (fresh draws let a withholding node through);
- every answer is verified against the coordinate that was asked for and that row's commitment;
  a cell claiming another coordinate is not a sample, and a peer answering with one is shunned
  like a peer serving a bad proof;
- a coordinate no peer served by the deadline makes the height UNAVAILABLE.

Work goes in rounds: every ready coordinate is assigned to a random usable peer it was not yet
tried at, the calls run concurrently (one GetSamples per peer, with a timeout), and everything
answered in the round is checked with one batch verification (the cheap case); only when the batch
fails is it split per peer to find the liar. Verification runs inline on the event loop: a few
milliseconds per header, less than shipping the cells to a process pool would cost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from da.cells import ProvenCell, cells_verify
from da.header import Header
from da.metrics import LightMetrics
from da.sampling import CellRef
from erasure.constants import BYTES_PER_CELL, BYTES_PER_PROOF
from light_client.errors import PeerCallFailed
from light_client.peers import Peer, PeerPool

log = logging.getLogger(__name__)

MAX_CELLS_PER_REQUEST = 64
RETRY_BACKOFF_SECONDS = 0.2  # first wait once a coordinate was tried at every usable peer
MAX_RETRY_BACKOFF_SECONDS = 2.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class SamplingOutcome:
    """What sampling one height found: which drawn cells verified, which none served, and which
    verified only after a retry (at another peer, or in a later pass)."""

    verified: frozenset[CellRef]
    missing: frozenset[CellRef]
    retried: frozenset[CellRef] = frozenset()
    # the verified cells with their proofs (kept, PROTOCOL.md §13)
    cells: tuple[ProvenCell, ...] = ()

    @property
    def available(self) -> bool:
        return not self.missing


@dataclass
class _Pending:
    """Retry state of one coordinate not yet verified."""

    tried: set[str] = field(default_factory=set)  # peers asked in the current pass
    not_before: float = 0.0
    passes: int = 0


@dataclass(frozen=True)
class _Answer:
    """One peer's answer to one GetSamples call within a round."""

    peer: Peer
    asked: tuple[CellRef, ...]
    cells: dict[CellRef, ProvenCell]  # answers keyed by the coordinate asked for
    failure: PeerCallFailed | None
    misbehaved: bool  # answered a coordinate it was not asked, or a malformed cell
    seconds: float


class Sampler:
    """Samples heights against a `PeerPool`; the clock, the sleep and the RNG are parameters."""

    def __init__(
        self,
        pool: PeerPool,
        *,
        request_timeout_seconds: float,
        rng: random.Random,
        metrics: LightMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._pool = pool
        self._timeout = request_timeout_seconds
        self._rng = rng
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep

    async def sample(
        self,
        header: Header,
        coords: Sequence[CellRef],
        deadline: float,
        preferred: Collection[str] = (),
    ) -> SamplingOutcome:
        """Fetch and verify `coords` of `header`'s square until all verify or `deadline` passes.

        Each request goes to a uniformly random peer among `preferred` (e.g. peers known to
        hold the block) while one of them is usable and untried for that coordinate, else to any
        usable peer; empty `preferred` means every peer. Answers are collected until every
        coordinate has one, then verified in one batch.
        """
        pending = {coord: _Pending() for coord in coords}
        answers: list[_Answer] = []  # answers with cells for pending coordinates, unverified
        verified: dict[CellRef, ProvenCell] = {}
        retried: set[CellRef] = set()
        while pending and self._clock() < deadline:
            answered = {coord for answer in answers for coord in answer.cells}
            waiting = {c: state for c, state in pending.items() if c not in answered}
            if not waiting:
                verified.update(self._settle(header, answers, pending, retried))
                continue
            now = self._clock()
            assignment = self._assign(waiting, now, preferred)
            if not assignment:
                await self._sleep(max(0.0, min(self._next_ready(waiting), deadline) - now))
                continue
            for answer in await self._round(header.height, assignment, deadline):
                self._received(header.height, answer)
                if answer.cells:
                    answers.append(answer)
        verified.update(self._settle(header, answers, pending, retried))  # in time: counts
        cells = tuple(verified[coord] for coord in sorted(verified))
        return SamplingOutcome(frozenset(verified), frozenset(pending), frozenset(retried), cells)

    def _settle(
        self,
        header: Header,
        answers: list[_Answer],
        pending: dict[CellRef, _Pending],
        retried: set[CellRef],
    ) -> dict[CellRef, ProvenCell]:
        """Verify the collected answers, drop them, and take their good cells off `pending`
        (into `retried` too when they were asked more than once)."""
        good = self._verify(header, answers) if answers else {}
        answers.clear()
        for coord in good:
            state = pending.pop(coord, None)
            if state is not None and (state.passes or len(state.tried) > 1):
                retried.add(coord)
        return good

    # --- assignment -------------------------------------------------------------------------

    def _assign(
        self, pending: dict[CellRef, _Pending], now: float, preferred: Collection[str]
    ) -> dict[str, list[CellRef]]:
        """Map peer name -> coordinates to ask it this round: a random usable peer the
        coordinate was not yet tried at, among the preferred ones if any is left."""
        usable = self._pool.usable()
        assignment: dict[str, list[CellRef]] = {}
        for coord, state in pending.items():
            if state.not_before > now or not usable:
                continue
            candidates = [p for p in usable if p.name not in state.tried]
            if not candidates:  # tried everywhere this pass: wait, then start a new pass
                state.tried.clear()
                state.passes += 1
                backoff = RETRY_BACKOFF_SECONDS * 2 ** min(state.passes - 1, 4)
                state.not_before = now + min(backoff, MAX_RETRY_BACKOFF_SECONDS)
                continue
            first_choice = [p for p in candidates if p.name in preferred]
            peer = self._rng.choice(first_choice or candidates)
            state.tried.add(peer.name)
            assignment.setdefault(peer.name, []).append(coord)
        return assignment

    def _next_ready(self, pending: dict[CellRef, _Pending]) -> float:
        """When the next round can assign something (a backoff ends or a shunned peer returns)."""
        ready = min(state.not_before for state in pending.values())
        if not self._pool.usable():
            unshun = self._pool.next_unshun_time()
            ready = max(ready, unshun if unshun is not None else ready)
        return max(ready, self._clock() + 0.01)

    # --- fetching ---------------------------------------------------------------------------

    async def _round(
        self, height: int, assignment: dict[str, list[CellRef]], deadline: float
    ) -> list[_Answer]:
        by_name = {p.name: p for p in self._pool.peers}
        step = MAX_CELLS_PER_REQUEST
        calls = [
            self._fetch(by_name[name], height, tuple(coords[i : i + step]), deadline)
            for name, coords in assignment.items()
            for i in range(0, len(coords), step)
        ]
        return list(await asyncio.gather(*calls))

    async def _fetch(
        self, peer: Peer, height: int, asked: tuple[CellRef, ...], deadline: float
    ) -> _Answer:
        start = self._clock()
        timeout = max(0.001, min(self._timeout, deadline - start))
        try:
            async with asyncio.timeout(timeout):
                async with self._pool.throttle(peer):
                    served = await peer.get_samples(height, asked, timeout)
        except TimeoutError:
            failure = PeerCallFailed(peer.name, "DEADLINE_EXCEEDED", "sample request timed out")
            return _Answer(peer, asked, {}, failure, False, self._clock() - start)
        except PeerCallFailed as e:
            return _Answer(peer, asked, {}, e, False, self._clock() - start)
        cells, misbehaved = _match(asked, served)
        return _Answer(peer, asked, cells, None, misbehaved, self._clock() - start)

    # --- verification -----------------------------------------------------------------------

    def _received(self, height: int, answer: _Answer) -> None:
        """Count the asked coordinates left unanswered; shun a peer answering what it was not
        asked (or malformed cells) at once."""
        if answer.misbehaved:
            self._shun(answer.peer, height)
        if self._metrics is None:
            return
        if answer.misbehaved:  # it answered, but with something that is not what was asked
            result = "bad_proof"
        elif answer.failure is not None and answer.failure.timed_out:
            result = "timeout"
        else:
            result = "error"
        for coord in answer.asked:
            if coord not in answer.cells:
                self._metrics.observe_sample(result, answer.seconds)

    def _verify(self, header: Header, answers: list[_Answer]) -> dict[CellRef, ProvenCell]:
        """The coordinates whose answers verify; shuns peers caught serving bad cells."""
        if _batch_ok(header, answers):
            trusted = answers
        else:  # split per answer to find who lied
            trusted = [a for a in answers if _batch_ok(header, [a])]
        trusted_ids = {id(a) for a in trusted}
        good: dict[CellRef, ProvenCell] = {}
        for answer in answers:
            honest = id(answer) in trusted_ids
            if honest:
                good.update(answer.cells)
            else:
                self._shun(answer.peer, header.height)
            if self._metrics is not None:
                for _ in answer.cells:
                    self._metrics.observe_sample("ok" if honest else "bad_proof", answer.seconds)
        return good

    def _shun(self, peer: Peer, height: int) -> None:
        if not self._pool.is_shunned(peer):
            log.warning("peer %s served bad cells at height %d: shunned", peer.name, height)
        self._pool.shun(peer)


def _match(
    asked: tuple[CellRef, ...], served: list[ProvenCell]
) -> tuple[dict[CellRef, ProvenCell], bool]:
    """Key the served cells by the coordinate asked for; flag unasked or malformed answers.

    A cell claiming a coordinate that was not asked is not a sample of anything asked (the
    attack of answering with another cell and its valid proof), so it is dropped and flagged.
    """
    wanted = set(asked)
    cells: dict[CellRef, ProvenCell] = {}
    misbehaved = False
    for cell in served:
        key = (cell.row, cell.col)
        coord = next((c for c in wanted if (c.row, c.col) == key), None)
        malformed = len(cell.data) != BYTES_PER_CELL or len(cell.proof) != BYTES_PER_PROOF
        if coord is None or malformed or coord in cells:
            misbehaved = True
            continue
        cells[coord] = cell
    return cells, misbehaved


def _batch_ok(header: Header, answers: list[_Answer]) -> bool:
    """One batch verification of every cell in `answers` (each keyed by the coordinate asked,
    which `_match` checked it claims)."""
    return cells_verify(header.commitments, [cell for a in answers for cell in a.cells.values()])
