"""Storage behind a Protocol: a key-value interface with atomic batches, an in-memory and a RocksDB
implementation (the only importer of `rocksdict`), and the key formats in one schema module."""
