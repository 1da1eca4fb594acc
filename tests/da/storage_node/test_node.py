"""The storage node's start: the rows of a block whose ingest a crash cut short are deleted."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from da.config import StorageNodeConfig
from da.storage_node import node
from da.store import blocks
from da.store.base import WriteBatch
from da.store.rocks import open_store
from tests.da.storage_node.chain import chain, store_block


async def test_opening_the_store_deletes_the_rows_of_an_unsealed_block(tmp_path: Path) -> None:
    first, second = chain(2)
    store = open_store(tmp_path / node.STORE_DIR)
    store_block(store, first)
    batch = WriteBatch()  # the crash came after one window of block 2's rows, before its seal
    blocks.add_rows_to_batch(batch, 2, 0, second.rows()[:1])
    store.write(batch, sync=True)
    store.close()
    config = StorageNodeConfig(
        data_dir=tmp_path, producer="127.0.0.1:1", chain_id="testchain", trusted_keys=("00",)
    )
    async with AsyncExitStack() as stack:
        reopened = node._open(stack, config)  # noqa: SLF001 - the start-up step under test
        assert blocks.get_row(reopened, 2, 0) is None
        assert blocks.head_height(reopened) == 1 and blocks.get_row(reopened, 1, 0) is not None
