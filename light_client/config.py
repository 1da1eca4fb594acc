"""Configuration of the light client (`da light-client`): a frozen dataclass with `validate()`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from da.api.config import ConfigError, ServerConfig
from da.config import (
    check_address,
    check_chain_id,
    check_max_rows,
    check_port,
    decode_public_keys,
)
from erasure.constants import DEFAULT_MAX_ROWS

DEFAULT_CONFIDENCE = 0.99
DEFAULT_SAMPLE_WINDOW_SECONDS = 30.0
DEFAULT_CONCURRENCY = 4
DEFAULT_LIGHT_REQUEST_TIMEOUT_SECONDS = 5.0
DEFAULT_PEER_REQUESTS_PER_SECOND = 50.0
DEFAULT_KEEP_SAMPLES = 1000  # heights, the storage nodes' default retention (PROTOCOL.md §13)
DEFAULT_KEEP_SAMPLES_BYTES = 512 * 1024 * 1024

__all__ = ["ConfigError", "LightClientConfig", "ServerConfig"]


@dataclass(frozen=True, kw_only=True)
class LightClientConfig:
    """`da light-client`: follows headers, samples cells, reports availability.

    Exactly one of `samples` (a fixed count per header) and `confidence` (the target probability
    of catching an unrecoverable square) is set after construction: leaving both None means
    `confidence = DEFAULT_CONFIDENCE`.
    """

    data_dir: Path
    peers: tuple[str, ...]  # storage nodes "host:port" (at least one)
    chain_id: str
    trusted_keys: tuple[str, ...]  # hex producer public keys (at least one)
    server: ServerConfig = ServerConfig()
    metrics_port: int | None = None  # None: no /metrics endpoint; 0: any free port
    metrics_address: str = "127.0.0.1"  # where /metrics listens (0.0.0.0 in containers)
    samples: int | None = None
    confidence: float | None = None
    sample_window_seconds: float = DEFAULT_SAMPLE_WINDOW_SECONDS  # give up on a header after
    concurrency: int = DEFAULT_CONCURRENCY  # sampling requests in flight at once
    request_timeout_seconds: float = DEFAULT_LIGHT_REQUEST_TIMEOUT_SECONDS  # per RPC
    peer_requests_per_second: float = DEFAULT_PEER_REQUESTS_PER_SECOND  # outgoing, per peer
    max_rows: int = DEFAULT_MAX_ROWS  # reject headers with a larger square
    tls_ca: Path | None = None  # PEM roots to verify the peers' TLS; None: plaintext
    keep_samples: int = DEFAULT_KEEP_SAMPLES  # heights whose samples, verdict, header are kept
    keep_samples_bytes: int = DEFAULT_KEEP_SAMPLES_BYTES  # and at most this many sample bytes
    announce: bool = True  # tell the peers where we serve our samples (AnnounceSampler)

    def __post_init__(self) -> None:
        if self.samples is None and self.confidence is None:
            object.__setattr__(self, "confidence", DEFAULT_CONFIDENCE)

    def validate(self) -> None:
        self.server.validate()
        if not str(self.data_dir).strip():
            raise ConfigError("data_dir must not be empty")
        if not self.peers:
            raise ConfigError("at least one peer (--peer HOST:PORT) is required")
        for peer in self.peers:
            check_address("peer", peer)
        check_chain_id(self.chain_id)
        if not self.trusted_keys:
            raise ConfigError("at least one trusted key (--trusted-key HEX) is required")
        decode_public_keys("trusted_keys", self.trusted_keys)
        check_port("metrics_port", self.metrics_port)
        self._validate_sampling()
        check_max_rows(self.max_rows)

    def _validate_sampling(self) -> None:
        if self.samples is not None and self.confidence is not None:
            raise ConfigError("give either samples or confidence, not both")
        if self.samples is not None and self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")
        positive = ("sample_window_seconds", "request_timeout_seconds", "peer_requests_per_second")
        for name in positive:
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.keep_samples < 1:
            raise ConfigError(f"keep_samples must be >= 1, got {self.keep_samples}")
        if self.keep_samples_bytes < 1:
            raise ConfigError(f"keep_samples_bytes must be >= 1, got {self.keep_samples_bytes}")
