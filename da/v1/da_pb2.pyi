from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BLOB_STATE_UNSPECIFIED: _ClassVar[BlobState]
    PENDING: _ClassVar[BlobState]
    INCLUDED: _ClassVar[BlobState]
    CERTIFIED: _ClassVar[BlobState]
    REJECTED: _ClassVar[BlobState]

class Availability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AVAILABILITY_UNSPECIFIED: _ClassVar[Availability]
    SAMPLING: _ClassVar[Availability]
    AVAILABLE: _ClassVar[Availability]
    UNAVAILABLE: _ClassVar[Availability]
BLOB_STATE_UNSPECIFIED: BlobState
PENDING: BlobState
INCLUDED: BlobState
CERTIFIED: BlobState
REJECTED: BlobState
AVAILABILITY_UNSPECIFIED: Availability
SAMPLING: Availability
AVAILABLE: Availability
UNAVAILABLE: Availability

class SubmitBlobRequest(_message.Message):
    __slots__ = ("namespace", "data")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    namespace: bytes
    data: bytes
    def __init__(self, namespace: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...

class SubmitBlobResponse(_message.Message):
    __slots__ = ("blob_hash", "status")
    BLOB_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    blob_hash: bytes
    status: BlobStatus
    def __init__(self, blob_hash: _Optional[bytes] = ..., status: _Optional[_Union[BlobStatus, _Mapping]] = ...) -> None: ...

class BlobStatus(_message.Message):
    __slots__ = ("state", "height", "start_cell", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    START_CELL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: BlobState
    height: int
    start_cell: int
    reason: str
    def __init__(self, state: _Optional[_Union[BlobState, str]] = ..., height: _Optional[int] = ..., start_cell: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class GetBlobStatusRequest(_message.Message):
    __slots__ = ("blob_hash",)
    BLOB_HASH_FIELD_NUMBER: _ClassVar[int]
    blob_hash: bytes
    def __init__(self, blob_hash: _Optional[bytes] = ...) -> None: ...

class GetBlobsRequest(_message.Message):
    __slots__ = ("height", "namespace")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    height: int
    namespace: bytes
    def __init__(self, height: _Optional[int] = ..., namespace: _Optional[bytes] = ...) -> None: ...

class Blob(_message.Message):
    __slots__ = ("namespace", "data", "blob_hash", "start_cell", "cells")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    BLOB_HASH_FIELD_NUMBER: _ClassVar[int]
    START_CELL_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    namespace: bytes
    data: bytes
    blob_hash: bytes
    start_cell: int
    cells: _containers.RepeatedCompositeFieldContainer[Cell]
    def __init__(self, namespace: _Optional[bytes] = ..., data: _Optional[bytes] = ..., blob_hash: _Optional[bytes] = ..., start_cell: _Optional[int] = ..., cells: _Optional[_Iterable[_Union[Cell, _Mapping]]] = ...) -> None: ...

class GetBlobsResponse(_message.Message):
    __slots__ = ("blobs",)
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    blobs: _containers.RepeatedCompositeFieldContainer[Blob]
    def __init__(self, blobs: _Optional[_Iterable[_Union[Blob, _Mapping]]] = ...) -> None: ...

class SignedHeader(_message.Message):
    __slots__ = ("header", "signature")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    signature: bytes
    def __init__(self, header: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetHeaderRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class SubscribeHeadersRequest(_message.Message):
    __slots__ = ("from_height",)
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    def __init__(self, from_height: _Optional[int] = ...) -> None: ...

class CellCoord(_message.Message):
    __slots__ = ("row", "col")
    ROW_FIELD_NUMBER: _ClassVar[int]
    COL_FIELD_NUMBER: _ClassVar[int]
    row: int
    col: int
    def __init__(self, row: _Optional[int] = ..., col: _Optional[int] = ...) -> None: ...

class Cell(_message.Message):
    __slots__ = ("row", "col", "data", "proof")
    ROW_FIELD_NUMBER: _ClassVar[int]
    COL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    row: int
    col: int
    data: bytes
    proof: bytes
    def __init__(self, row: _Optional[int] = ..., col: _Optional[int] = ..., data: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...

class GetSamplesRequest(_message.Message):
    __slots__ = ("height", "coords")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    COORDS_FIELD_NUMBER: _ClassVar[int]
    height: int
    coords: _containers.RepeatedCompositeFieldContainer[CellCoord]
    def __init__(self, height: _Optional[int] = ..., coords: _Optional[_Iterable[_Union[CellCoord, _Mapping]]] = ...) -> None: ...

class GetSamplesResponse(_message.Message):
    __slots__ = ("cells",)
    CELLS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[Cell]
    def __init__(self, cells: _Optional[_Iterable[_Union[Cell, _Mapping]]] = ...) -> None: ...

class GetRowRequest(_message.Message):
    __slots__ = ("height", "row")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    height: int
    row: int
    def __init__(self, height: _Optional[int] = ..., row: _Optional[int] = ...) -> None: ...

class GetRowResponse(_message.Message):
    __slots__ = ("cells",)
    CELLS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[Cell]
    def __init__(self, cells: _Optional[_Iterable[_Union[Cell, _Mapping]]] = ...) -> None: ...

class Attestation(_message.Message):
    __slots__ = ("height", "header_hash", "public_key", "signature")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HEADER_HASH_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    height: int
    header_hash: bytes
    public_key: bytes
    signature: bytes
    def __init__(self, height: _Optional[int] = ..., header_hash: _Optional[bytes] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class AttestResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    def __init__(self, accepted: _Optional[bool] = ...) -> None: ...

class GetCertificateRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("height", "header_hash", "public_keys", "aggregate_signature")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HEADER_HASH_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    height: int
    header_hash: bytes
    public_keys: _containers.RepeatedScalarFieldContainer[bytes]
    aggregate_signature: bytes
    def __init__(self, height: _Optional[int] = ..., header_hash: _Optional[bytes] = ..., public_keys: _Optional[_Iterable[bytes]] = ..., aggregate_signature: _Optional[bytes] = ...) -> None: ...

class GetAvailabilityRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class AvailabilityResponse(_message.Message):
    __slots__ = ("height", "status", "confidence", "samples", "header_hash")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    HEADER_HASH_FIELD_NUMBER: _ClassVar[int]
    height: int
    status: Availability
    confidence: float
    samples: int
    header_hash: bytes
    def __init__(self, height: _Optional[int] = ..., status: _Optional[_Union[Availability, str]] = ..., confidence: _Optional[float] = ..., samples: _Optional[int] = ..., header_hash: _Optional[bytes] = ...) -> None: ...

class GetHeldSamplesRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class AnnounceSamplerRequest(_message.Message):
    __slots__ = ("port",)
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: int
    def __init__(self, port: _Optional[int] = ...) -> None: ...

class AnnounceSamplerResponse(_message.Message):
    __slots__ = ("accepted", "ttl_seconds")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    ttl_seconds: int
    def __init__(self, accepted: _Optional[bool] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class ReplicateBlobsRequest(_message.Message):
    __slots__ = ("epoch", "chain_id", "blobs")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    chain_id: str
    blobs: _containers.RepeatedCompositeFieldContainer[PendingBlob]
    def __init__(self, epoch: _Optional[int] = ..., chain_id: _Optional[str] = ..., blobs: _Optional[_Iterable[_Union[PendingBlob, _Mapping]]] = ...) -> None: ...

class ReplicateBlobsResponse(_message.Message):
    __slots__ = ("refused",)
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    refused: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, refused: _Optional[_Iterable[int]] = ...) -> None: ...

class GetPendingBlobsRequest(_message.Message):
    __slots__ = ("epoch", "chain_id")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    chain_id: str
    def __init__(self, epoch: _Optional[int] = ..., chain_id: _Optional[str] = ...) -> None: ...

class ForwardBlobRequest(_message.Message):
    __slots__ = ("chain_id", "namespace", "data")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    namespace: bytes
    data: bytes
    def __init__(self, chain_id: _Optional[str] = ..., namespace: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...

class PendingBlob(_message.Message):
    __slots__ = ("namespace", "data")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    namespace: bytes
    data: bytes
    def __init__(self, namespace: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...
