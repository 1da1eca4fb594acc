"""The Python client for rollups (PROTOCOL.md §15): submit blobs, follow them, read them back
verified.

`DAClient` (blocking) and `AsyncDAClient` (asyncio) have the same methods. Results are frozen
dataclasses of our own types; no protobuf message crosses this package's surface. Everything a
node answers is checked before it is returned: headers against the trust root (`chain_id`,
`trusted_keys`), every blob cell against its row commitment, every blob the header lists for the
namespace present; a failed check raises `VerificationError` saying what failed and where.

Imports the API edge (`da.api`) and the protocol modules; never the producer, storage node or
light client packages. The `da` command's node commands and the devnet use it too.
"""

from da.certificate import Certificate
from da.client.aio import AsyncDAClient
from da.client.errors import (
    BlobRejected,
    ClientError,
    RemoteError,
    VerificationError,
    WaitTimeout,
)
from da.client.results import Availability, Blob, BlobStatus, Receipt
from da.client.sync import DAClient
from da.header import Header, SignedHeader

__all__ = [
    "AsyncDAClient",
    "Availability",
    "Blob",
    "BlobRejected",
    "BlobStatus",
    "Certificate",
    "ClientError",
    "DAClient",
    "Header",
    "Receipt",
    "RemoteError",
    "SignedHeader",
    "VerificationError",
    "WaitTimeout",
]
