"""How a role's gRPC server is configured: `ServerConfig` (listen address, TLS, token, limits),
its defaults, the method and service names the limits and health use, and `ConfigError`.

Why limits per host as well as per connection: a client opens connections for free, so a limit
per connection alone bounds nothing; a host (an IP address) costs an attacker something. Both
are needed because one host may be a NAT or a loopback devnet of many honest processes, whose
per-host budget is therefore several connections' worth.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from da.errors import DAError

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
# Only SubmitBlob takes the bearer token (PROTOCOL.md §11): `Attest` is authenticated by its BLS
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
