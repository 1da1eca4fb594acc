"""Client side of the gRPC edge: channels with keepalive and size limits, auth metadata, timeouts.

Every remote call passes `timeout=` (STYLE 12); `DEFAULT_RPC_TIMEOUT_SECONDS` is the default.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from da.api.config import AUTHORIZATION_KEY, BEARER_PREFIX, DEFAULT_MAX_MESSAGE_BYTES

DEFAULT_RPC_TIMEOUT_SECONDS = 10.0
KEEPALIVE_TIME_MS = 60_000  # not below the server's min ping interval, or it sends GOAWAY
KEEPALIVE_TIMEOUT_MS = 20_000

Metadata = tuple[tuple[str, str], ...]


def channel_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def open_channel(
    target: str,
    *,
    tls_ca: Path | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> grpc.aio.Channel:
    """An aio channel to "host:port": TLS verified against `tls_ca` (PEM) if given, else plaintext.

    Use as `async with open_channel(...) as channel:`, or `await channel.close()`.
    """
    options = channel_options(max_message_bytes)
    if tls_ca is None:
        return grpc.aio.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
    return grpc.aio.secure_channel(target, credentials, options=options)


def bearer_metadata(token: str | None) -> Metadata:
    """The `authorization` metadata for write methods (empty when there is no token)."""
    if token is None:
        return ()
    return ((AUTHORIZATION_KEY, BEARER_PREFIX + token),)


def describe_rpc_error(error: grpc.aio.AioRpcError) -> str:
    """One line: "CODE: details" (for logs and the command line)."""
    return f"{error.code().name}: {error.details() or 'no details'}"
