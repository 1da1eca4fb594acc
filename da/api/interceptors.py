"""The interceptors every role's gRPC server runs, outermost first (`build_interceptors`):
metrics (method, status code, latency of unary calls), the error table (`da.api.errors`), limits
(per connection and per host: call rate, concurrent calls, open streams), bearer-token auth on
write methods (only `SubmitBlob`: PROTOCOL.md §11).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import grpc
from asyncio_throttle import Throttler
from grpc.aio import ServicerContext
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME

from da.api.config import (
    AUTHORIZATION_KEY,
    BEARER_PREFIX,
    MAX_TRACKED_PEERS,
    ServerConfig,
)
from da.api.errors import ErrorInterceptor, ScopeInterceptor
from da.errors import RateLimited, ResourceExhausted, Unauthenticated

log = logging.getLogger(__name__)


class RpcObserver(Protocol):
    """What the metrics interceptor needs (`da.metrics.RpcMetrics` provides it)."""

    def observe_request(self, method: str, code: str, seconds: float | None) -> None: ...


class MetricsInterceptor(ScopeInterceptor):
    """Observes every RPC's method and final status code name, and the latency of unary calls
    (a stream's lifetime is not a latency: it would drown the histogram)."""

    def __init__(self, observer: RpcObserver, clock: Callable[[], float] = time.perf_counter):
        self._observer = observer
        self._clock = clock

    @asynccontextmanager
    async def scope(
        self, method: str, context: ServicerContext[Any, Any], *, streaming: bool
    ) -> AsyncIterator[None]:
        start = self._clock()
        code = grpc.StatusCode.OK
        try:
            yield
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = _context_code(context) or grpc.StatusCode.UNKNOWN
            raise
        finally:
            seconds = None if streaming else self._clock() - start
            self._observer.observe_request(method, code.name, seconds)


def _context_code(context: ServicerContext[Any, Any]) -> grpc.StatusCode | None:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    # grpc.aio reports the code set by abort() as the raw integer of the C core.
    return next((c for c in grpc.StatusCode if c.value[0] == code), None)


class AuthInterceptor(ScopeInterceptor):
    """Requires `authorization: Bearer <token>` on write methods (constant-time comparison)."""

    def __init__(self, token: str, write_methods: Iterable[str]):
        self._expected = (BEARER_PREFIX + token).encode()
        self._write_methods = frozenset(write_methods)

    @asynccontextmanager
    async def scope(
        self, method: str, context: ServicerContext[Any, Any], *, streaming: bool
    ) -> AsyncIterator[None]:
        if method in self._write_methods:
            self._check(context)
        yield

    def _check(self, context: ServicerContext[Any, Any]) -> None:
        metadata = context.invocation_metadata() or ()
        given = next((v for k, v in metadata if k == AUTHORIZATION_KEY), None)
        if given is None:
            raise Unauthenticated("missing bearer token (authorization metadata)")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if not hmac.compare_digest(given_bytes, self._expected):
            raise Unauthenticated("bad bearer token")


def peer_host(peer: str) -> str:
    """The host part of a grpc peer string ("ipv4:127.0.0.1:5000" -> "ipv4:127.0.0.1",
    "ipv6:[::1]:5000" -> "ipv6:[::1]"); other forms (unix sockets) are their own host."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rpartition(":")[0]
    return peer


class _Buckets:
    """Token buckets by key (`burst` requests per `burst / rate` seconds each), the least
    recently seen forgotten beyond `MAX_TRACKED_PEERS`."""

    def __init__(self, rate_per_second: float, burst: int, wait_seconds: float) -> None:
        self._burst = burst
        self._period = burst / rate_per_second
        self._wait = wait_seconds
        self._throttlers: OrderedDict[str, Throttler] = OrderedDict()

    async def take(self, key: str) -> None:
        """Wait up to `wait_seconds` for a slot of `key`'s bucket; `RateLimited` otherwise."""
        try:
            await asyncio.wait_for(self._throttler(key).acquire(), self._wait)
        except TimeoutError:
            raise RateLimited(key, retry_after_seconds=self._period / self._burst) from None

    def _throttler(self, key: str) -> Throttler:
        throttler = self._throttlers.pop(key, None)
        if throttler is None:
            throttler = Throttler(rate_limit=self._burst, period=self._period)
            if len(self._throttlers) >= MAX_TRACKED_PEERS:
                self._throttlers.popitem(last=False)  # forget the least recently seen key
        self._throttlers[key] = throttler
        return throttler


class _Slots:
    """Counts calls in progress by key; `acquire` refuses beyond `limit` at once."""

    def __init__(self, limit: int, what: str) -> None:
        self._limit = limit
        self._what = what
        self._held: dict[str, int] = {}

    def acquire(self, key: str) -> None:
        held = self._held.get(key, 0)
        if held >= self._limit:
            raise ResourceExhausted(f"more than {self._limit} {self._what} from {key}")
        self._held[key] = held + 1

    def release(self, key: str) -> None:
        held = self._held.pop(key) - 1
        if held > 0:
            self._held[key] = held


class LimitInterceptor(ScopeInterceptor):
    """Per connection (`context.peer()`): a call rate. Per host (all its connections): a call
    rate, calls in progress and open response streams. Health checks are exempt."""

    def __init__(self, config: ServerConfig) -> None:
        self._per_peer = _buckets(
            config.rate_limit_per_second, config.rate_limit_burst, config.rate_limit_wait_seconds
        )
        # A host's burst is two connections' worth: a devnet's or a NAT's honest processes
        # start together, and the rate, not the burst, is what bounds an abusive host.
        self._per_host = _buckets(
            config.host_rate_limit_per_second,
            2 * config.rate_limit_burst,
            config.rate_limit_wait_seconds,
        )
        self._calls = _Slots(config.host_concurrent_calls, "concurrent calls")
        self._streams = _Slots(config.host_streams, "open streams")

    @asynccontextmanager
    async def scope(
        self, method: str, context: ServicerContext[Any, Any], *, streaming: bool
    ) -> AsyncIterator[None]:
        if method.startswith(f"/{HEALTH_SERVICE_NAME}/"):
            yield
            return
        peer = context.peer()
        host = peer_host(peer)
        if self._per_peer is not None:
            await self._per_peer.take(peer)
        if self._per_host is not None:
            await self._per_host.take(host)
        slots = self._streams if streaming else self._calls
        slots.acquire(host)
        try:
            yield
        finally:
            slots.release(host)


def _buckets(rate_per_second: float, burst: int, wait_seconds: float) -> _Buckets | None:
    return _Buckets(rate_per_second, burst, wait_seconds) if rate_per_second > 0 else None


def build_interceptors(
    config: ServerConfig, rpc_metrics: RpcObserver | None
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptor chain of `create_server`, outermost first."""
    chain: list[grpc.aio.ServerInterceptor] = []
    if rpc_metrics is not None:
        chain.append(MetricsInterceptor(rpc_metrics))
    chain.append(ErrorInterceptor())
    chain.append(LimitInterceptor(config))
    if config.auth_token is not None:
        chain.append(AuthInterceptor(config.auth_token, config.write_methods))
    return chain
