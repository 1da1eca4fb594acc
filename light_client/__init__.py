"""The sampling light client: header sync, random sampling, availability state, its gRPC service.

Trusts only its configured chain id and producer keys. Imports `erasure` and `da`'s protocol and
API modules, never the producer, the storage node or their storage.
"""
