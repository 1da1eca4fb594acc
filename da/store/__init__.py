"""Storage behind a Protocol: a key-value interface with atomic batches, an in-memory and a RocksDB
implementation (the only importer of `rocksdict`), and the key formats in one schema module.

- `base`: `KeyValueStore` (the Protocol), `WriteBatch`; `errors`: `StoreError` and its leaves.
- `memory.MemoryStore`, `rocks.RocksStore`, `rocks.open_store(path | None)`.
- `schema`: every key (and the value layouts); nothing else builds keys.
- typed accessors: `headers` (signed headers by height: block stores and the light client),
  `blocks` (extended rows, block markers, head height, pruning: producer and storage node only),
  `blobs` (producer mempool and blob records), `certificates` (attestations, DA certificates),
  `checkpoint` and `held` (the light client's verdicts and kept samples).

Writers queue into a `WriteBatch` (`add_x_to_batch(batch, ...)`) so a caller can make several
records durable together (a block's seal and the blobs it includes); a `put_x(store, ...)` exists
where a feature writes one record alone. Must not import a role package or `da.v1`. Import
`rocks` only where a store is opened; everything else takes a `KeyValueStore`.
Values are fixed-layout bytes (struct), never pickle, so a database is readable by any tool.
"""
