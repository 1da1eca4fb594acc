"""Server construction for every role: interceptors, health, reflection, TLS, port binding.

`create_server(config, servicers, rpc_metrics=..., service_names=...)` builds, binds and starts
a `grpc.aio.Server` and returns it with the bound port (port 0 picks a free one). Interceptors,
outermost first: metrics (method, status code, latency of unary calls), the error table
(`da.api.errors`), limits (per connection and per host: call rate, concurrent calls, open
streams), bearer-token auth on write methods (only `SubmitBlob`: DESIGN 13). `stop_server` flips
health to NOT_SERVING before `server.stop(grace)` so load balancers drain first.

Why limits per host as well as per connection: a client opens connections for free, so a limit
per connection alone bounds nothing; a host (an IP address) costs an attacker something. Both
are needed because one host may be a NAT or a loopback devnet of many honest processes, whose
per-host budget is therefore several connections' worth.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import grpc
from asyncio_throttle import Throttler
from grpc.aio import ServicerContext
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from da.api.errors import ErrorInterceptor, wrap_handler
from da.errors import DAError, RateLimited, ResourceExhausted, Unauthenticated

log = logging.getLogger(__name__)

HealthServicer: TypeAlias = health_aio.HealthServicer  # grpc_health.v1.health.aio

MIB = 1024 * 1024
# A GetBlobs answer carries a blob's data *and* its cells with proofs (~2.06x the data): a full
# k=64 square (~7.75 MiB of payload) answers in ~16.1 MiB, so 32 MiB leaves headroom. This bounds
# what a server *sends*; what it accepts (`ServerConfig.max_message_bytes`) is set per role: a
# producer takes blobs, storage nodes and light clients take only small requests.
DEFAULT_MAX_MESSAGE_BYTES = 32 * MIB
MAX_SEND_MESSAGE_BYTES = DEFAULT_MAX_MESSAGE_BYTES
READ_ONLY_MAX_MESSAGE_BYTES = MIB  # storage node, light client: requests of a few hundred bytes
DEFAULT_RATE_LIMIT_PER_SECOND = 200.0
DEFAULT_RATE_LIMIT_BURST = 400
# Per host (all connections from one IP address together).
DEFAULT_HOST_RATE_LIMIT_PER_SECOND = 1000.0
DEFAULT_HOST_CONCURRENT_CALLS = 64
DEFAULT_HOST_STREAMS = 16
DEFAULT_MAX_CONCURRENT_RPCS = 512  # the whole server; grpc answers RESOURCE_EXHAUSTED beyond
# How long a request may queue for a rate-limit slot before it is refused.
DEFAULT_RATE_LIMIT_WAIT_SECONDS = 0.05
DEFAULT_GRACE_SECONDS = 5.0
MAX_TRACKED_PEERS = 10_000

SUBMIT_BLOB_METHOD = "/da.v1.BlobService/SubmitBlob"
ATTEST_METHOD = "/da.v1.AttestationService/Attest"
# Only SubmitBlob takes the bearer token (DESIGN 13): `Attest` is authenticated by its BLS
# signature against the producer's `--operator` keys, and read methods are public.
WRITE_METHODS: frozenset[str] = frozenset({SUBMIT_BLOB_METHOD})
AUTHORIZATION_KEY = "authorization"
BEARER_PREFIX = "Bearer "

# Fully qualified names of our services, for `service_names` (health and reflection).
BLOB_SERVICE = "da.v1.BlobService"
HEADER_SERVICE = "da.v1.HeaderService"
SHARE_SERVICE = "da.v1.ShareService"
ATTESTATION_SERVICE = "da.v1.AttestationService"
SAMPLING_SERVICE = "da.v1.SamplingService"

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


class ConfigError(DAError):
    """A configuration value is invalid or settings contradict each other.

    Local problem: retrying cannot help; the message names the setting to fix.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class RpcObserver(Protocol):
    """What the metrics interceptor needs (`da.metrics.RpcMetrics` provides it)."""

    def observe_request(self, method: str, code: str, seconds: float | None) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """How a role's gRPC server listens and guards itself."""

    listen: str = "127.0.0.1:0"  # "host:port"; "[v6]:port" for IPv6; port 0 = any free port
    auth_token: str | None = field(default=None, repr=False)  # required on write methods if set
    insecure: bool = False  # allow listening beyond loopback without an auth token
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key enables TLS
    tls_key: Path | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # the largest request accepted
    rate_limit_per_second: float = DEFAULT_RATE_LIMIT_PER_SECOND  # per connection; 0 disables
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    rate_limit_wait_seconds: float = DEFAULT_RATE_LIMIT_WAIT_SECONDS
    host_rate_limit_per_second: float = DEFAULT_HOST_RATE_LIMIT_PER_SECOND  # 0 disables
    host_concurrent_calls: int = DEFAULT_HOST_CONCURRENT_CALLS  # calls in progress per host
    host_streams: int = DEFAULT_HOST_STREAMS  # open server streams per host
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS  # the whole server
    # Methods that need the token; a server with none (storage node, light client) may listen
    # anywhere without a token.
    write_methods: frozenset[str] = WRITE_METHODS

    @property
    def host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen)[1]

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad setting."""
        host, _ = split_host_port(self.listen)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        if self.auth_token is not None and not self.auth_token.strip():
            raise ConfigError("auth_token is empty")
        if self.max_message_bytes < MIB:
            raise ConfigError(f"max_message_bytes must be at least {MIB}")
        if self.rate_limit_per_second < 0:
            raise ConfigError("rate_limit_per_second must be >= 0 (0 disables the limit)")
        if self.rate_limit_burst < 1:
            raise ConfigError("rate_limit_burst must be >= 1")
        if not self.rate_limit_wait_seconds > 0:  # wait_for(..., 0) would refuse everything
            raise ConfigError("rate_limit_wait_seconds must be > 0")
        if self.host_rate_limit_per_second < 0:
            raise ConfigError("host_rate_limit_per_second must be >= 0 (0 disables the limit)")
        for name in ("host_concurrent_calls", "host_streams", "max_concurrent_rpcs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        needs_token = bool(self.write_methods)
        if needs_token and not is_loopback(host) and self.auth_token is None and not self.insecure:
            raise ConfigError(
                f"refusing to listen on {self.listen} (beyond loopback) without an auth token: "
                "give --auth-token-file, listen on 127.0.0.1, or pass --insecure"
            )


def split_host_port(address: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port"; raises `ConfigError` on anything else."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ConfigError(f"address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not host or port > 65535:
        raise ConfigError(f"address {address!r} is not host:port with a port in 0..65535")
    return host, port


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (never for 0.0.0.0 / ::)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- interceptors ---------------------------------------------------------------------------


class _ScopeInterceptor(grpc.aio.ServerInterceptor):
    """Runs every RPC's behaviour inside `self.scope(method, context, streaming=...)`, where
    `streaming` says whether the method streams its responses (a long-lived call)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        streaming = handler is not None and bool(handler.response_streaming)
        scope = functools.partial(self.scope, streaming=streaming)
        return wrap_handler(handler, handler_call_details.method, scope)

    def scope(
        self, method: str, context: ServicerContext[Any, Any], *, streaming: bool
    ) -> Any:
        raise NotImplementedError


class MetricsInterceptor(_ScopeInterceptor):
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


class AuthInterceptor(_ScopeInterceptor):
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


class LimitInterceptor(_ScopeInterceptor):
    """Per connection (`context.peer()`): a call rate. Per host (all its connections): a call
    rate, calls in progress and open response streams. Health checks are exempt."""

    def __init__(self, config: ServerConfig) -> None:
        self._per_peer = _buckets(config.rate_limit_per_second, config.rate_limit_burst,
                                  config.rate_limit_wait_seconds)
        # A host's burst is two connections' worth: a devnet's or a NAT's honest processes
        # start together, and the rate, not the burst, is what bounds an abusive host.
        self._per_host = _buckets(config.host_rate_limit_per_second,
                                  2 * config.rate_limit_burst, config.rate_limit_wait_seconds)
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


# --- server lifecycle -----------------------------------------------------------------------

AddServicer = Callable[[Any, grpc.aio.Server], None]
"""A generated `add_XServicer_to_server` function."""

_HEALTH: weakref.WeakKeyDictionary[grpc.aio.Server, HealthServicer] = weakref.WeakKeyDictionary()


async def create_server(
    config: ServerConfig,
    servicers: Sequence[tuple[AddServicer, Any]],
    *,
    rpc_metrics: RpcObserver | None,
    service_names: Sequence[str],
    health: HealthServicer | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Build, bind and start a server for `servicers`; returns it and the bound port.

    `servicers` are `(add_XServicer_to_server, servicer)` pairs; `service_names` the fully
    qualified names they serve (e.g. `BLOB_SERVICE`), reported SERVING by health and listed by
    reflection. Raises `ConfigError` for a bad config (e.g. beyond loopback without a token) and
    `OSError` if the port cannot be bound.
    """
    config.validate()
    server = grpc.aio.server(
        interceptors=build_interceptors(config, rpc_metrics),
        options=_server_options(config),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    for add, servicer in servicers:
        add(servicer, server)
    health = health or HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = _bind(server, config)
    await server.start()
    for name in ("", *service_names):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    _HEALTH[server] = health
    log.info("gRPC server listening on %s (port %d)", config.host, port)
    return server, port


async def stop_server(
    server: grpc.aio.Server,
    health: HealthServicer | None = None,
    grace: float | None = DEFAULT_GRACE_SECONDS,
) -> None:
    """Report NOT_SERVING for every service, then stop, letting RPCs finish for `grace` s."""
    health = health or _HEALTH.get(server)
    if health is not None:
        await health.enter_graceful_shutdown()
    await server.stop(grace)


def server_health(server: grpc.aio.Server) -> HealthServicer:
    """The health servicer `create_server` registered on `server`."""
    return _HEALTH[server]


def _server_options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", MAX_SEND_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def _bind(server: grpc.aio.Server, config: ServerConfig) -> int:
    if config.tls_cert is not None and config.tls_key is not None:
        try:
            key, cert = config.tls_key.read_bytes(), config.tls_cert.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read TLS key or certificate: {e}") from e
        port = server.add_secure_port(config.listen, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(config.listen)
    if port == 0:
        raise OSError(f"cannot bind {config.listen}")
    return port
