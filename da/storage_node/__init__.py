"""The storage node: follows the producer's headers, verifies each before anything else, fetches
and verifies every cell, stores each block's rows a window at a time and makes the block
visible in one synced seal, serves headers, cells and blobs, attests, and
reconstructs from peers when whole rows are nowhere to be had.

- `follow` (header subscriptions), `ingest` (`Ingestor`: the header gate, `StoreSink`, the seal),
  `fetch` (rows a window at a time, repair from cells), `gather` and `samplers` (cells held by
  light clients), `remotes` (the gRPC client of peers), `attest`, `service`, `node`.

Imported only by the command line and tests; must not import `da.producer` or `light_client`.
Why a block becomes visible only through its seal: rows are written as they verify (memory stays
bounded), but a reader must never see half a block, so `has_block` looks only at the marker that
the last, synced batch writes together with the header.
"""
