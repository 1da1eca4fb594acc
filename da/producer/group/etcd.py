"""The only importer of the etcd client (`aetcd`, asyncio, etcd v3 API).

Keys, under `/da/<chain_id>/`:
- `leader`: the replica name, attached to the leader's lease; its creation revision is the epoch.
- `tip`: the committed tip, `height:u64 || header hash (32)`.
- `headers/<height:020>`: a committed signed header, `u32 raw length || raw || signature`.

Every call has a timeout; a call that fails on one member moves on to the next endpoint, for at
most `retry_seconds`, then raises `CoordinatorUnavailable` (retrying later can help). Nothing
here decides policy: the replica does.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aetcd
import aetcd.exceptions

from da.errors import Unavailable
from da.header import ZERO_HASH

log = logging.getLogger(__name__)

T = TypeVar("T")
ETCD_TIMEOUT_SECONDS = 2.0
RETRY_PAUSE_SECONDS = 0.1  # between attempts at the next member
# How long a call keeps trying the members: an etcd leader election after a member's death
# takes one election timeout (1 s by default) plus a vote, longer on a loaded machine.
RETRY_WINDOW_SECONDS = 6.0
WATCH_RETRY_SECONDS = 0.5  # before watching again through the next member after a break
_TIP = struct.Struct(">Q32s")
_RAW_LENGTH = struct.Struct(">I")


class CoordinatorUnavailable(Unavailable):
    """No etcd member answered in time (-> UNAVAILABLE). Retrying later can help."""


@dataclass(frozen=True)
class CommittedTip:
    """The last committed header: its height (0 before the first) and hash (zeros then)."""

    height: int
    hash: bytes


@dataclass(frozen=True)
class LeaderKey:
    """Who leads and under which epoch (the leader key's creation revision)."""

    name: str
    epoch: int
    lease_id: int


def encode_tip(tip: CommittedTip) -> bytes:
    return _TIP.pack(tip.height, tip.hash)


def decode_tip(raw: bytes) -> CommittedTip:
    height, hash_ = _TIP.unpack(raw)
    return CommittedTip(height, hash_)


def encode_signed(raw: bytes, signature: bytes) -> bytes:
    return _RAW_LENGTH.pack(len(raw)) + raw + signature


def decode_signed(value: bytes) -> tuple[bytes, bytes]:
    (length,) = _RAW_LENGTH.unpack_from(value)
    body = value[_RAW_LENGTH.size :]
    return body[:length], body[length:]


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


class Coordinator:
    """A chain's keys in an etcd cluster reached through `endpoints` ("host:port" each)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        chain_id: str,
        *,
        timeout_seconds: float = ETCD_TIMEOUT_SECONDS,
        retry_seconds: float = RETRY_WINDOW_SECONDS,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self._endpoints = tuple(endpoints)
        self._timeout = timeout_seconds
        self._retry_seconds = retry_seconds
        self._index = 0
        self._client: aetcd.Client | None = None
        prefix = f"/da/{chain_id}/"
        self._prefix = prefix.encode()
        self._leader_key = (prefix + "leader").encode()
        self._tip_key = (prefix + "tip").encode()
        self._size_key = (prefix + "size").encode()
        self._headers_prefix = prefix + "headers/"

    def header_key(self, height: int) -> bytes:
        return f"{self._headers_prefix}{height:020d}".encode()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # --- leases and leadership -------------------------------------------------------------

    async def grant_lease(self, ttl_seconds: int) -> int:
        """A new lease of `ttl_seconds`; returns its id."""
        lease = await self._call(lambda c: c.lease(ttl_seconds))
        return int(lease.id)

    async def keep_alive(self, lease_id: int) -> bool:
        """Refresh the lease once; False if it has already expired (or was revoked)."""
        reply = await self._call(lambda c: c.refresh_lease(lease_id))
        return reply is not None and int(reply.TTL) > 0

    async def revoke(self, lease_id: int) -> None:
        """End the lease now; the keys attached to it (the leader key) are deleted with it."""
        await self._call(lambda c: c.revoke_lease(lease_id))

    async def campaign(self, name: str, lease_id: int) -> LeaderKey:
        """Create the leader key on `lease_id` if nobody holds it; returns whoever holds it now
        (this replica with a new epoch, or the current leader)."""

        async def txn(c: aetcd.Client) -> Any:
            t = c.transactions
            return await c.transaction(
                compare=[t.create(self._leader_key) == 0],
                success=[t.put(self._leader_key, name.encode(), lease_id), t.get(self._leader_key)],
                failure=[t.get(self._leader_key)],
            )

        _ok, responses = await self._call(txn)
        found = responses[-1]
        if not found:  # the other leader's lease expired between compare and read: try again
            raise CoordinatorUnavailable("leader key vanished during the campaign")
        _value, kv = found[0]
        return LeaderKey(kv.value.decode(), int(kv.create_revision), int(kv.lease))

    async def leader(self) -> LeaderKey | None:
        """The current leader, or None when nobody leads."""
        kv = await self._call(lambda c: c.get(self._leader_key))
        if kv is None:
            return None
        return LeaderKey(kv.value.decode(), int(kv.create_revision), int(kv.lease))

    async def group_size(self, size: int) -> int:
        """The number of replicas of the group as etcd records it: the first replica to ask
        records its own `size`; every later one is answered with that record."""

        async def txn(c: aetcd.Client) -> Any:
            t = c.transactions
            return await c.transaction(
                compare=[t.create(self._size_key) == 0],
                success=[t.put(self._size_key, str(size).encode())],
                failure=[t.get(self._size_key)],
            )

        ok, responses = await self._call(txn)
        if ok:
            return size
        value, _kv = responses[-1][0]
        try:
            return int(value.decode())
        except ValueError:
            raise CoordinatorUnavailable(
                f"the group size in etcd is not a number: {value!r}"
            ) from None

    # --- the committed chain ----------------------------------------------------------------

    async def commit_header(
        self, epoch: int, parent: CommittedTip, height_hash: bytes, raw: bytes, signature: bytes
    ) -> bool:
        """Commit the header at `parent.height + 1` in one transaction that succeeds only if the
        leader key still has creation revision `epoch`, nothing is committed at that height and
        the committed tip is `parent`. False: refused (the caller is no longer the leader).

        In doubt (an attempt's answer was lost: etcd may have applied it): a retry on the next
        member is refused if the first applied, and its failure branch reads the height, so our
        own header there means committed. If no member answers, the height is read back once
        etcd answers again (`committed`); still no answer raises `CoordinatorUnavailable`."""
        height = parent.height + 1
        ours = encode_signed(raw, signature)
        tip_unchanged = (
            [self._txn_value(self._tip_key, encode_tip(parent))]
            if parent.height
            else [self._txn_version(self._tip_key, 0)]
        )

        async def txn(c: aetcd.Client) -> Any:
            t = c.transactions
            return await c.transaction(
                compare=[
                    t.create(self._leader_key) == epoch,
                    t.version(self.header_key(height)) == 0,
                    *tip_unchanged,
                ],
                success=[
                    t.put(self.header_key(height), ours),
                    t.put(self._tip_key, encode_tip(CommittedTip(height, height_hash))),
                ],
                failure=[t.get(self.header_key(height))],
            )

        try:
            ok, responses = await self._call(txn)
        except CoordinatorUnavailable:
            return await self.committed(height, raw, signature)
        if ok:
            return True
        found = responses[-1]
        return bool(found) and found[0][0] == ours  # an earlier attempt of ours applied

    async def committed(self, height: int, raw: bytes, signature: bytes) -> bool:
        """Whether this header is the one committed at `height` (reading back a commit in
        doubt); raises `CoordinatorUnavailable` if etcd does not answer."""
        return await self.header(height) == (raw, signature)

    async def tip(self) -> CommittedTip:
        """The committed tip (height 0 before the first header)."""
        kv = await self._call(lambda c: c.get(self._tip_key))
        return CommittedTip(0, ZERO_HASH) if kv is None else decode_tip(kv.value)

    async def header(self, height: int) -> tuple[bytes, bytes] | None:
        """(raw header, signature) committed at `height`, or None."""
        kv = await self._call(lambda c: c.get(self.header_key(height)))
        return None if kv is None else decode_signed(kv.value)

    async def watch(self, on_change: Callable[[], None]) -> None:
        """Call `on_change` on every change of the chain's keys (leader, tip, headers), until
        cancelled; also when a watch starts or breaks (a change may have been missed meanwhile),
        then watch again through the next member. The watch has its own connection. A watch
        stalled without an error (a member paused) is not noticed here: callers also poll."""
        index = self._index
        while True:
            endpoint = self._endpoints[index]
            host, port = split_endpoint(endpoint)
            client = aetcd.Client(host, port, timeout=self._timeout)
            try:
                events = await client.watch_prefix(self._prefix)
                on_change()
                async for _event in events:
                    on_change()
            except (aetcd.exceptions.ClientError, TimeoutError) as e:
                log.info("etcd watch through %s broke (%s); watching through the next", endpoint, e)
            finally:
                await client.close()
            on_change()
            index = (index + 1) % len(self._endpoints)
            await asyncio.sleep(WATCH_RETRY_SECONDS)

    # --- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _txn_value(key: bytes, value: bytes) -> Any:
        return aetcd.transactions.Value(key) == value

    @staticmethod
    def _txn_version(key: bytes, version: int) -> Any:
        return aetcd.transactions.Version(key) == version

    async def _call(self, op: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        """`op` on the current member; on a connection failure or a member without a raft
        leader, on the next member, round after round, for up to `retry_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_seconds
        last: Exception | None = None
        while True:
            client = self._connect()
            try:
                return await op(client)
            except (
                aetcd.exceptions.ConnectionFailedError,
                aetcd.exceptions.ConnectionTimeoutError,
                aetcd.exceptions.InternalError,
                TimeoutError,
            ) as e:
                last = e
                await self._next_endpoint()
            except aetcd.exceptions.ClientError as e:
                raise CoordinatorUnavailable(f"etcd refused the request: {e}") from e
            if loop.time() >= deadline:
                break
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
        raise CoordinatorUnavailable(f"no etcd member of {list(self._endpoints)} answered: {last}")

    def _connect(self) -> aetcd.Client:
        if self._client is None:
            host, port = split_endpoint(self._endpoints[self._index])
            self._client = aetcd.Client(host, port, timeout=self._timeout)
        return self._client

    async def _next_endpoint(self) -> None:
        log.info("etcd member %s failed; trying the next", self._endpoints[self._index])
        await self.close()
        self._index = (self._index + 1) % len(self._endpoints)
