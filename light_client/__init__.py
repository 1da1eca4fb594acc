"""The sampling light client: header sync, random sampling, availability state, its gRPC service.

Trusts only its configured chain id and producer keys. Imports `erasure` and `da`'s protocol and
API modules and `da.store.headers`; never the producer, the storage node or their block store
(`da.store.blocks`): import-linter contracts in pyproject.toml.

- `peers`: a storage node as seen from here (`Peer`, `GrpcPeer`), the pool with per-peer rate
  limits and shunning;
- `chain`: header verification (PROTOCOL.md §6), links to both neighbours, equivocation refused;
- `sync`: SubscribeHeaders from every peer, catch-up with GetHeader, reconnect with backoff;
- `sampler`: one height's samples (PROTOCOL.md §7): same-coordinate retries elsewhere, answers
  checked against the coordinate asked, one batch verification per round;
- `state`: per-height results and the checkpoint, persisted (a restart never resamples);
- `announce`: tells storage nodes it serves its kept samples (GetHeldSamples);
- `service`: SamplingService.GetAvailability; `node`: the scheduler and `run(config)`.

Why the sampler never draws a fresh coordinate for a failed one: a node withholding a few cells
could otherwise answer every sample by refusing until the client redraws elsewhere.
"""
