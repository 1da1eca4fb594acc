"""The block producer: accepts blobs (persisted before acknowledgement), builds, encodes, signs,
stores and publishes blocks, serves headers and cells, and aggregates storage-node attestations
into DA certificates. Imported only by the command line and tests."""
