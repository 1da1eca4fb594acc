"""The producer group (PROTOCOL.md §12): replicas coordinated by etcd, one leader at a time.

- `etcd.py`: the only importer of the etcd client (`aetcd`): leases, campaign, the fenced header
  commit, the committed tip. Replacing the engine is replacing that one file.
- `leader.py`: `Leadership`, the lease kept alive by its own task, the epoch, stepping down.
- `replica.py`: `GroupReplica`, a replica's life: catch up the committed chain, campaign, lead
  (commit each header before it is stored and published), follow.

Why etcd and a fencing epoch rather than a home-made election: the leader key's creation revision
only grows, and every header commit compares it in the same transaction, so a leader that was
paused past its lease can sign a header but can never get it committed, hence never published.
Imported only by `da.producer.node` and tests.
"""
