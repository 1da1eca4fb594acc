"""Every error of package `da`, under one base, `DAError`.

Two families:

- protocol failures about a header: `InvalidHeader` (the bytes are not a v1 header) and
  `HeaderRejected` (a well-formed header this node must not accept), plus `Equivocation`;
- service errors, grouped under one base per gRPC status code so that the single table in
  `da.api.errors` maps the bases: `InvalidRequest` -> INVALID_ARGUMENT, `NotFound` -> NOT_FOUND,
  `ResourceExhausted` -> RESOURCE_EXHAUSTED, `Unauthenticated` -> UNAUTHENTICATED,
  `Unavailable` -> UNAVAILABLE, `Unimplemented` -> UNIMPLEMENTED.

Every class passes its typed fields to `Exception.__init__`, so errors pickle across process pools
and `args` stays meaningful; `__str__` gives the human message.
"""

from __future__ import annotations


class DAError(Exception):
    """Base of every error raised by package `da`."""


# --- keys -------------------------------------------------------------------------------------


class KeyFileError(DAError):
    """A key file is missing, unreadable, malformed, or would be overwritten.

    Local configuration problem: retrying elsewhere cannot help; fix the file or the path.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"key file {self.path}: {self.reason}"


# --- headers ----------------------------------------------------------------------------------


class InvalidHeader(DAError):
    """Header bytes (or a signature) are not a canonical v1 header (PROTOCOL.md §5).

    Raised by `da.header.header_from_bytes` and friends. The sender is broken or hostile: the same
    bytes are invalid everywhere, but another peer may serve a correct header for that height.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid header: {self.reason}"


class HeaderRejected(DAError):
    """A well-formed header this node must not accept (PROTOCOL.md §6). Subclasses say why.

    Another peer may serve the genuine header for that height, so retrying elsewhere can help,
    except for `WrongChain` (a misconfigured peer) which says nothing about the genuine header.
    """


class WrongChain(HeaderRejected):
    """The header's chain id is not the trust root's: the peer serves another network."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected, got)
        self.expected = expected
        self.got = got

    def __str__(self) -> str:
        return f"header is for chain {self.got!r}, expected {self.expected!r}"


class UntrustedProducer(HeaderRejected):
    """The header names a producer key that is not in the trust root."""

    def __init__(self, producer: bytes) -> None:
        super().__init__(producer)
        self.producer = producer

    def __str__(self) -> str:
        return f"producer key {self.producer.hex()} is not trusted"


class BadSignature(HeaderRejected):
    """The signature does not verify under the header's producer key over its header_hash."""

    def __init__(self, height: int, header_hash: bytes) -> None:
        super().__init__(height, header_hash)
        self.height = height
        self.header_hash = header_hash

    def __str__(self) -> str:
        return f"bad producer signature on header {self.header_hash.hex()} at height {self.height}"


class BrokenLink(HeaderRejected):
    """`prev_hash` differs from the hash of the known header at height - 1.

    Either the peer is on a fork or the known parent is wrong; another peer may help.
    """

    def __init__(self, height: int, expected_prev: bytes, got_prev: bytes) -> None:
        super().__init__(height, expected_prev, got_prev)
        self.height = height
        self.expected_prev = expected_prev
        self.got_prev = got_prev

    def __str__(self) -> str:
        return (
            f"header at height {self.height} links to {self.got_prev.hex()}, "
            f"expected parent {self.expected_prev.hex()}"
        )


class TooManyRows(HeaderRejected):
    """The header's square has more rows than this node is configured to accept."""

    def __init__(self, k: int, max_rows: int) -> None:
        super().__init__(k, max_rows)
        self.k = k
        self.max_rows = max_rows

    def __str__(self) -> str:
        return f"header has k={self.k} rows, this node accepts at most {self.max_rows}"


class InconsistentCommitments(HeaderRejected):
    """The 2k row commitments do not lie on a polynomial of degree < k (PROTOCOL.md §6).

    The producer signed a badly extended square: samples against it prove nothing. The header is
    signed, so this is evidence against the producer; other peers serve the same header.
    """

    def __init__(self, height: int, reason: str = "not on a degree < k polynomial") -> None:
        super().__init__(height, reason)
        self.height = height
        self.reason = reason

    def __str__(self) -> str:
        return f"inconsistent row commitments at height {self.height}: {self.reason}"


class Equivocation(DAError):
    """The trusted producer signed two different headers for the same height.

    Both signed headers are kept as evidence. Nothing to retry: the chain itself is suspect.
    """

    def __init__(self, height: int, first_hash: bytes, second_hash: bytes) -> None:
        super().__init__(height, first_hash, second_hash)
        self.height = height
        self.first_hash = first_hash
        self.second_hash = second_hash

    def __str__(self) -> str:
        return (
            f"producer equivocated at height {self.height}: "
            f"{self.first_hash.hex()} and {self.second_hash.hex()}"
        )


# --- service errors, one base per gRPC status code -------------------------------------------


class InvalidRequest(DAError):
    """Malformed request (-> INVALID_ARGUMENT). The same request fails everywhere: do not retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class BadCoordinate(InvalidRequest):
    """A cell coordinate lies outside the 2k x 128 extended square of that height."""

    def __init__(self, row: int, col: int, k: int) -> None:
        super().__init__(f"cell ({row}, {col}) is outside the {2 * k} x 128 extended square")
        self.args = (row, col, k)
        self.row = row
        self.col = col
        self.k = k


class BadNamespace(InvalidRequest):
    """A namespace is not 1..29 bytes, or is reserved (all zeros or all 0xFF)."""

    def __init__(self, namespace: bytes, reason: str) -> None:
        super().__init__(f"bad namespace {namespace.hex()}: {reason}")
        self.args = (namespace, reason)
        self.namespace = namespace


class NotFound(DAError):
    """The thing asked for is not known here (-> NOT_FOUND). Another node may have it."""


class UnknownHeight(NotFound):
    """No block is stored (yet, or any more after pruning) at this height."""

    def __init__(self, height: int) -> None:
        super().__init__(height)
        self.height = height

    def __str__(self) -> str:
        return f"no block at height {self.height}"


class NotSampled(NotFound):
    """A light client skipped this height (below its backlog when it caught up, or pruned
    before a verdict): it never sampled it and never will. Ask another light client."""

    def __init__(self, height: int) -> None:
        super().__init__(height)
        self.height = height

    def __str__(self) -> str:
        return f"height {self.height} was skipped: never sampled here"


class UnknownBlob(NotFound):
    """No blob with this hash was submitted here or is in the block asked for."""

    def __init__(self, blob_hash: bytes) -> None:
        super().__init__(blob_hash)
        self.blob_hash = blob_hash

    def __str__(self) -> str:
        return f"unknown blob {self.blob_hash.hex()}"


class ResourceExhausted(DAError):
    """Over a size or rate limit (-> RESOURCE_EXHAUSTED)."""


class TooLarge(ResourceExhausted):
    """A request or blob exceeds a size limit. Retrying the same payload anywhere fails alike."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(what, size, limit)
        self.what = what
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"{self.what} is {self.size} bytes, the limit is {self.limit}"


class RateLimited(ResourceExhausted):
    """The caller sent too many requests; retry later or at another node."""

    def __init__(self, peer: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(peer, retry_after_seconds)
        self.peer = peer
        self.retry_after_seconds = retry_after_seconds

    def __str__(self) -> str:
        after = (
            "" if self.retry_after_seconds is None else f"; retry after {self.retry_after_seconds}s"
        )
        return f"rate limit exceeded for {self.peer}{after}"


class Unauthenticated(DAError):
    """A write method was called without a valid bearer token (-> UNAUTHENTICATED)."""

    def __init__(self, reason: str = "missing or bad bearer token") -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class PermissionDenied(DAError):
    """The caller is known but not allowed to do this, e.g. an attestation signed by a key that
    is not one of the producer's `--operator`s (-> PERMISSION_DENIED). Retrying never helps."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class Unavailable(DAError):
    """The node cannot serve right now (starting, syncing, shutting down, or data withheld)
    (-> UNAVAILABLE). Retrying later or at another node can help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class Unimplemented(DAError):
    """The method exists in the service but this node's role does not serve it, e.g. SubmitBlob
    at a storage node (-> UNIMPLEMENTED). Retrying here never helps; `reason` says where to go."""

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(method, reason)
        self.method = method
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.method}: {self.reason}"
