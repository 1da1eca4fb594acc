"""Storage behind a Protocol: a key-value interface with atomic batches, an in-memory and a RocksDB
implementation (the only importer of `rocksdict`), and the key formats in one schema module.

- `base`: `KeyValueStore` (the Protocol), `WriteBatch`; `errors`: `StoreError` and its leaves.
- `memory.MemoryStore`, `rocks.RocksStore`, `rocks.open_store(path | None)`.
- `schema`: every key (and the value layouts); nothing else builds keys.
- typed accessors: `blocks` (signed headers, extended rows, head height, pruning), `blobs`
  (producer mempool and blob records), `certificates` (attestations, DA certificates),
  `checkpoint` (light-client sampling results).

Accessors come in pairs: `put_x(store, ...)` writes at once, `add_x_to_batch(batch, ...)` queues
the same ops so a caller can make several records durable together (a block and the blobs it
includes). Import `rocks` only where a store is opened; everything else takes a `KeyValueStore`.
Values are fixed-layout bytes (struct), never pickle, so a database is readable by any tool.
"""
