"""The read side shared by the producer and the storage node, over a block store
(`da.store.blocks` format): HeaderService, ShareService and the GetBlobs lookup.

- `HeaderServicer`: GetHeader (0 = latest) and SubscribeHeaders, which streams stored headers
  from the store and is woken by a `HeadNotifier` the writer calls after storing a block.
- `ShareServicer`: GetSamples (at most 128 distinct coordinates, cells in the order asked, each
  row read once, off the event loop) and GetRow.
- `get_blobs(store, height, namespace)`: every blob of a namespace at a height with its data and
  the cells (with proofs) holding it; `BlobReadServicer` serves it as BlobService.GetBlobs and
  leaves the write methods to the role that has them.

Handlers raise `da.errors` leaves only; the error table of `da.api.errors` (installed by
`create_server`) maps them to status codes. Why the stream reads the store rather than a queue of
pushed headers: a slow subscriber then costs nothing but its position, so there is no queue to
bound and no header to drop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from da.api import convert
from da.api.server import AddServicer
from da.cells import BlobCells, ProvenCell
from da.errors import ResourceExhausted, UnknownHeight
from da.header import Header, blob_cells, blob_entries_for_namespace
from da.sampling import CellRef
from da.store import blocks
from da.store import headers as header_store
from da.store.base import KeyValueStore
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.layout import blob_data_from_cells, normalize_namespace

MAX_SUBSCRIBERS = 256
# A subscriber re-reads the head this often even without a notification (a missed wake-up, or a
# writer that does not notify, costs at most this much latency).
SUBSCRIBE_POLL_SECONDS = 5.0
ROW_CACHE_BYTES = 64 * 1024 * 1024  # ~250 rows of cells and proofs: two k = 64 blocks

ServedCounter = Callable[[int], None]
"""Called with the number of cells (with proofs) an RPC served, e.g.
`StorageMetrics.observe_samples_served`."""


def _ignore(_count: int) -> None:
    return None


class HeadNotifier:
    """Wakes header subscribers after a block is stored. Call `notify` from the event loop
    thread, after the block is durable (the stream reads it back from the store)."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.head = 0

    def notify(self, height: int) -> None:
        """A block at `height` is now stored; wakes every waiting subscriber."""
        self.head = max(self.head, height)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def next_change(self) -> asyncio.Event:
        """An event set by the next `notify`; take it *before* reading the store, so a block
        stored in between is never missed."""
        return self._changed


# --- headers --------------------------------------------------------------------------------


class HeaderSource(Protocol):
    """The headers a HeaderService serves. Called from worker threads (store reads)."""

    def head(self) -> int:
        """The newest height served (0 if none)."""
        ...

    def lowest(self) -> int:
        """The oldest height still held (0 if none): a subscription never starts below it."""
        ...

    def signed_header(self, height: int) -> tuple[bytes, bytes] | None:
        """(header bytes, signature) at `height`, or None (never held, or pruned)."""
        ...


class StoredHeaders:
    """The headers of the whole blocks in a block store (producer and storage node)."""

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store

    def head(self) -> int:
        return blocks.head_height(self._store)

    def lowest(self) -> int:
        return blocks.lowest_height(self._store)

    def signed_header(self, height: int) -> tuple[bytes, bytes] | None:
        return header_store.get_signed_header(self._store, height) if height >= 1 else None


class HeaderServicer(da_pb2_grpc.HeaderServiceServicer):
    """HeaderService over a `HeaderSource`: a block store (`StoredHeaders`: producer and storage
    node) or a light client's verified chain."""

    def __init__(
        self,
        headers: HeaderSource,
        notifier: HeadNotifier,
        *,
        max_subscribers: int = MAX_SUBSCRIBERS,
        poll_seconds: float = SUBSCRIBE_POLL_SECONDS,
    ) -> None:
        self._headers = headers
        self._notifier = notifier
        self._max_subscribers = max_subscribers
        self._poll_seconds = poll_seconds
        self._subscribers = 0

    async def GetHeader(self, request: pb.GetHeaderRequest, context: Any) -> pb.SignedHeader:
        found = await asyncio.to_thread(self._get, request.height)
        if found is None:
            raise UnknownHeight(request.height)
        return found

    def _get(self, height: int) -> pb.SignedHeader | None:
        """The header at `height` (0: the head) as a message, or None."""
        stored = self._headers.signed_header(height or self._headers.head())
        return None if stored is None else convert.signed_header_to_pb(*stored)

    async def SubscribeHeaders(
        self, request: pb.SubscribeHeadersRequest, context: Any
    ) -> AsyncIterator[pb.SignedHeader]:
        if self._subscribers >= self._max_subscribers:
            raise ResourceExhausted(f"more than {self._max_subscribers} header subscribers")
        self._subscribers += 1
        try:
            async for header in self._stream(request.from_height):
                yield header
        finally:
            self._subscribers -= 1

    async def _stream(self, from_height: int) -> AsyncIterator[pb.SignedHeader]:
        """Headers from `from_height` (0: from the head) on, then each new one. A height below
        the lowest held starts at the lowest held (PROTOCOL.md §11): nothing is done for pruned
        history, and every store read runs off the event loop."""
        headers = self._headers
        if from_height:
            next_height = max(from_height, await asyncio.to_thread(headers.lowest))
        else:
            next_height = max(await asyncio.to_thread(headers.head), 1)
        while True:
            changed = self._notifier.next_change()
            head = await asyncio.to_thread(headers.head)
            while next_height <= head:
                found = await asyncio.to_thread(self._get, next_height)
                next_height += 1
                if found is not None:
                    yield found
            try:
                await asyncio.wait_for(changed.wait(), self._poll_seconds)
            except TimeoutError:
                pass


# --- cells ----------------------------------------------------------------------------------


def block_k(store: KeyValueStore, height: int) -> int:
    """k of the whole block stored at `height`; raises `UnknownHeight`."""
    rows = blocks.block_row_count(store, height) if height > 0 else None
    if rows is None:
        raise UnknownHeight(height)
    return rows // 2


def read_cells(
    store: KeyValueStore, height: int, refs: Sequence[CellRef], cache: RowCache | None = None
) -> list[tuple[bytes, bytes]]:
    """(cell, proof) per checked coordinate, in order, each row read once; `UnknownHeight` if
    pruned meanwhile."""
    if cache is None:
        found = blocks.get_cells(store, height, refs)
        if found is None:
            raise UnknownHeight(height)
        return found
    rows = {row: cache.row(store, height, row) for row in {ref.row for ref in refs}}
    return [(rows[ref.row][0][ref.col], rows[ref.row][1][ref.col]) for ref in refs]


class RowCache:
    """The most recently read rows, whole (cells and proofs split out), at most `max_bytes` of
    them; safe to use from several threads (the servicers read off the event loop).

    Why: a request for 16 random cells touches up to 16 rows of ~262 KiB each; reading and
    slicing them per request costs more than the RPC itself, while samplers keep asking about
    the same recent blocks. Rows of a height never change once stored; a pruned height is
    refused before the cache is asked (`block_k` reads the block marker), so no invalidation.
    """

    def __init__(self, max_bytes: int = ROW_CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._rows: OrderedDict[tuple[int, int], tuple[list[bytes], list[bytes]]] = OrderedDict()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def row(self, store: KeyValueStore, height: int, row: int) -> tuple[list[bytes], list[bytes]]:
        key = (height, row)
        with self._lock:
            found = self._rows.get(key)
            if found is not None:
                self._rows.move_to_end(key)
                return found
        found = read_row(store, height, row)
        self._keep(key, found)
        return found

    def _keep(self, key: tuple[int, int], row: tuple[list[bytes], list[bytes]]) -> None:
        size = sum(map(len, row[0])) + sum(map(len, row[1]))
        if size > self._max_bytes:
            return
        with self._lock:
            if key in self._rows:
                return
            self._rows[key] = row
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, (cells, proofs) = self._rows.popitem(last=False)
                self._bytes -= sum(map(len, cells)) + sum(map(len, proofs))


def read_row(store: KeyValueStore, height: int, row: int) -> tuple[list[bytes], list[bytes]]:
    """(128 cells, 128 proofs) of a checked row; `UnknownHeight` if pruned meanwhile."""
    found = blocks.get_row(store, height, row)
    if found is None:
        raise UnknownHeight(height)
    return found


class ShareServicer(da_pb2_grpc.ShareServiceServicer):
    """ShareService over a block store: cells with their KZG proofs."""

    def __init__(
        self,
        store: KeyValueStore,
        *,
        on_served: ServedCounter = _ignore,
        cache: RowCache | None = None,
    ) -> None:
        self._store = store
        self._on_served = on_served
        self._cache = cache if cache is not None else RowCache()

    async def GetSamples(
        self, request: pb.GetSamplesRequest, context: Any
    ) -> pb.GetSamplesResponse:
        # One trip off the event loop per request: the block's k, the checked coordinates and
        # the cells (each hop to a worker thread costs about as much as a cached read).
        refs, found = await asyncio.to_thread(self._samples, request)
        self._on_served(len(found))
        return pb.GetSamplesResponse(
            cells=[
                convert.cell_to_pb(ref.row, ref.col, data, proof)
                for ref, (data, proof) in zip(refs, found, strict=True)
            ]
        )

    def _samples(
        self, request: pb.GetSamplesRequest
    ) -> tuple[list[CellRef], list[tuple[bytes, bytes]]]:
        k = block_k(self._store, request.height)
        refs = convert.coordinates_from_pb(request.coords, k)
        return refs, read_cells(self._store, request.height, refs, self._cache)

    async def GetRow(self, request: pb.GetRowRequest, context: Any) -> pb.GetRowResponse:
        row, (cells, proofs) = await asyncio.to_thread(self._row, request)
        self._on_served(len(cells))
        return pb.GetRowResponse(
            cells=[
                convert.cell_to_pb(row, col, data, proof)
                for col, (data, proof) in enumerate(zip(cells, proofs, strict=True))
            ]
        )

    def _row(self, request: pb.GetRowRequest) -> tuple[int, tuple[list[bytes], list[bytes]]]:
        row = convert.check_row(request.row, block_k(self._store, request.height))
        return row, self._cache.row(self._store, request.height, row)


# --- blobs ----------------------------------------------------------------------------------


def stored_header(store: KeyValueStore, height: int) -> Header:
    """The decoded header of a whole stored block; raises `UnknownHeight` (or
    `CorruptValueError` if the stored bytes no longer decode)."""
    held = blocks.has_block(store, height)
    stored = header_store.get_decoded_header(store, height) if held else None
    if stored is None:
        raise UnknownHeight(height)
    return stored.header


def get_blobs(store: KeyValueStore, height: int, namespace: bytes) -> list[BlobCells]:
    """Every blob of `namespace` (1..29 bytes, left-padded) in the block at `height`, in square
    order. Raises `UnknownHeight`, or `InvalidNamespace` for a malformed or reserved namespace."""
    namespace = normalize_namespace(bytes(namespace))
    header = stored_header(store, height)
    found = []
    for entry in blob_entries_for_namespace(header, namespace):
        refs = blob_cells(entry)
        cells = read_cells(store, height, refs)
        data = blob_data_from_cells([cell for cell, _ in cells], entry.length)
        proven = tuple(
            ProvenCell(ref.row, ref.col, cell, proof)
            for ref, (cell, proof) in zip(refs, cells, strict=True)
        )
        found.append(BlobCells(namespace, data, entry.blob_hash, entry.start_cell, proven))
    return found


class BlobReadServicer(da_pb2_grpc.BlobServiceServicer):
    """BlobService.GetBlobs over a block store; SubmitBlob and GetBlobStatus are left to the
    subclass (the producer accepts blobs; a storage node refuses them)."""

    def __init__(self, store: KeyValueStore, *, on_served: ServedCounter = _ignore) -> None:
        self._store = store
        self._on_served = on_served

    async def GetBlobs(self, request: pb.GetBlobsRequest, context: Any) -> pb.GetBlobsResponse:
        # Off the event loop: a blob may span every row of a block (MiBs to read and join).
        found = await asyncio.to_thread(get_blobs, self._store, request.height, request.namespace)
        self._on_served(sum(len(blob.cells) for blob in found))
        return pb.GetBlobsResponse(blobs=[convert.blob_cells_to_pb(b) for b in found])


# --- wiring ---------------------------------------------------------------------------------


def read_servicers(
    store: KeyValueStore, notifier: HeadNotifier, *, on_served: ServedCounter = _ignore
) -> list[tuple[AddServicer, Any]]:
    """(add function, servicer) pairs for HeaderService and ShareService, for `create_server`."""
    return [
        (
            da_pb2_grpc.add_HeaderServiceServicer_to_server,
            HeaderServicer(StoredHeaders(store), notifier),
        ),
        (da_pb2_grpc.add_ShareServiceServicer_to_server, ShareServicer(store, on_served=on_served)),
    ]
