"""Server lifecycle for every role: `create_server(config, servicers, rpc_metrics=...,
service_names=...)` builds a `grpc.aio.Server` with the interceptors of `da.api.interceptors`,
health and reflection, binds it (TLS when configured; port 0 picks a free one), starts it and
returns it with the bound port. `stop_server` flips health to NOT_SERVING before
`server.stop(grace)` so load balancers drain first. Configuration lives in `da.api.config`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from da.api.config import DEFAULT_GRACE_SECONDS, MAX_SEND_MESSAGE_BYTES, ConfigError, ServerConfig
from da.api.interceptors import RpcObserver, build_interceptors

log = logging.getLogger(__name__)

HealthServicer: TypeAlias = health_aio.HealthServicer  # grpc_health.v1.health.aio


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
