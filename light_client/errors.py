"""Errors of the light client, under one base, `LightClientError`.

Header and service errors come from `da.errors` (the gRPC table maps those); these are the light
client's own failures talking to its peers.
"""

from __future__ import annotations


class LightClientError(Exception):
    """Base of every error raised by package `light_client`."""


class PeerCallFailed(LightClientError):
    """A call to a peer failed: an RPC status (NOT_FOUND, UNAVAILABLE, ...), a timeout, or an
    answer that is not well-formed. Another peer may serve the same request: retry elsewhere."""

    def __init__(self, peer: str, code: str, detail: str = "") -> None:
        super().__init__(peer, code, detail)
        self.peer = peer
        self.code = code
        self.detail = detail

    @property
    def timed_out(self) -> bool:
        return self.code == "DEADLINE_EXCEEDED"

    def __str__(self) -> str:
        return f"peer {self.peer}: {self.code} {self.detail}".rstrip()
