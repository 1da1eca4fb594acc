"""The block producer: accepts blobs (persisted before acknowledgement), builds, encodes, signs,
stores and publishes blocks, serves headers and cells, and aggregates storage-node attestations
into DA certificates.

- `mempool` (pending blobs, bounded), `encoder` (the worker pool, replaced when it breaks),
  `blocks` (`BlockProducer`: rows streamed into the store, then one synced seal), `certify`
  (attestations -> certificates), `service` (BlobService, AttestationService handlers), `node`
  (wiring and `run(config)`), `group/` (several replicas coordinated by etcd).

Imported only by the command line and tests; must not import `da.storage_node` or
`light_client`. Why rows are streamed to the store rather than built in memory: a k = 512 square
is ~270 MB of cells and proofs; streaming keeps the producer's memory bounded by a few batches.
"""
