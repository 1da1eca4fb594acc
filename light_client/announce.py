"""Announcements (PROTOCOL.md §13): the light client tells each storage node it samples from the
port where it serves its kept samples, and repeats before the listing expires, so that a storage
node that lost a block can rebuild it from the samplers' cells.

The storage node records the port on the address the call came from (the announcement names no
host), so an announcement can never point it at a third party.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from light_client.errors import PeerCallFailed
from light_client.peers import GrpcPeer

log = logging.getLogger(__name__)

DEFAULT_ANNOUNCE_SECONDS = 60.0  # repeat at least this often (and at half the listing's TTL)
MIN_ANNOUNCE_SECONDS = 5.0


async def announce_forever(
    peers: Sequence[GrpcPeer],
    port: int,
    *,
    timeout: float,
    every_seconds: float = DEFAULT_ANNOUNCE_SECONDS,
) -> None:
    """Announce `port` to every peer now and then again before each listing lapses."""
    while True:
        ttls = await asyncio.gather(*(_announce(peer, port, timeout) for peer in peers))
        listed = [ttl for ttl in ttls if ttl > 0]
        wait = min([every_seconds, *(ttl / 2 for ttl in listed)])
        await asyncio.sleep(max(MIN_ANNOUNCE_SECONDS, wait))


async def _announce(peer: GrpcPeer, port: int, timeout: float) -> int:
    try:
        ttl = await peer.announce(port, timeout)
    except PeerCallFailed as e:  # an older node, or down for now: try again next round
        log.debug("announcing to %s failed: %s", peer.name, e)
        return 0
    if ttl == 0:
        log.info("%s refused our sampler announcement", peer.name)
    return ttl
