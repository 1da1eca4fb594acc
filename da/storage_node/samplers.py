"""The light clients a storage node can rebuild blocks from (PROTOCOL.md §13): the `--sampler`
addresses it was given, and those that announced themselves with `SamplerRegistry.AnnounceSampler`.

Announced samplers are bounded three ways, so that announcements cannot grow memory or turn the
node against a third party: at most `max_announced` in all, at most `per_host` per announcing
host (the oldest of that host's listings makes room), and each expires `ttl_seconds` after its
last announcement. The address recorded is the caller's own host with the announced port.
A sampler caught serving a bad cell is shunned for `shun_seconds`: not asked again meanwhile.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from da.api.config import split_host_port
from da.errors import InvalidRequest
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

log = logging.getLogger(__name__)

ANNOUNCED_TTL_SECONDS = 600
MAX_ANNOUNCED = 1024
MAX_PER_HOST = 4
SHUN_SECONDS = 600.0


class SamplerDirectory:
    """Who to ask for held samples: configured and announced samplers, minus the shunned."""

    def __init__(
        self,
        configured: Sequence[str] = (),
        *,
        ttl_seconds: int = ANNOUNCED_TTL_SECONDS,
        max_announced: int = MAX_ANNOUNCED,
        per_host: int = MAX_PER_HOST,
        shun_seconds: float = SHUN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = tuple(dict.fromkeys(configured))
        self.ttl_seconds = ttl_seconds
        self._max_announced = max_announced
        self._per_host = per_host
        self._shun_seconds = shun_seconds
        self._clock = clock
        self._announced: OrderedDict[str, float] = OrderedDict()  # address -> expiry, oldest first
        self._shunned: dict[str, float] = {}  # address -> until

    def announce(self, host: str, port: int) -> tuple[str, bool]:
        """List `host:port` for `ttl_seconds` (renewing it); returns the address listed and
        whether it is new (not a renewal)."""
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._expire()
        new = self._announced.pop(address, None) is None
        same_host = [a for a in self._announced if split_host_port(a)[0] == host]
        for old in same_host[: max(0, len(same_host) - self._per_host + 1)]:
            del self._announced[old]
        while len(self._announced) >= self._max_announced:
            self._announced.popitem(last=False)
        self._announced[address] = self._clock() + self.ttl_seconds
        return address, new

    def shun(self, address: str) -> None:
        self._shunned[address] = self._clock() + self._shun_seconds

    def is_shunned(self, address: str) -> bool:
        return self._shunned.get(address, 0.0) > self._clock()

    def candidates(self, rng: random.Random) -> list[str]:
        """Every usable sampler (configured, then announced, not shunned), in random order."""
        self._expire()
        addresses = list(dict.fromkeys([*self.configured, *self._announced]))
        usable = [a for a in addresses if not self.is_shunned(a)]
        rng.shuffle(usable)
        return usable

    def _expire(self) -> None:
        now = self._clock()
        for address in [a for a, until in self._announced.items() if until <= now]:
            del self._announced[address]
        for address in [a for a, until in self._shunned.items() if until <= now]:
            del self._shunned[address]


def caller_host(peer: str) -> str:
    """The host of a gRPC peer string ("ipv4:1.2.3.4:5", "ipv6:[::1]:5"); raises
    `InvalidRequest` for anything else (a unix socket cannot be dialled back)."""
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        raise InvalidRequest(f"cannot list a sampler reached over {kind or 'unknown'} transport")
    return split_host_port(address)[0]


class SamplerRegistryServicer(da_pb2_grpc.SamplerRegistryServicer):
    """AnnounceSampler: list the caller's host with the announced port."""

    def __init__(self, directory: SamplerDirectory) -> None:
        self._directory = directory

    async def AnnounceSampler(  # noqa: N802 - generated name
        self, request: pb.AnnounceSamplerRequest, context: Any
    ) -> pb.AnnounceSamplerResponse:
        if not 1 <= request.port <= 65535:
            raise InvalidRequest(f"port {request.port} is not in 1..65535")
        address, new = self._directory.announce(caller_host(context.peer()), request.port)
        if new:
            log.info("light client %s listed as a sampler", address)
        return pb.AnnounceSamplerResponse(accepted=True, ttl_seconds=self._directory.ttl_seconds)
