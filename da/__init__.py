"""Everything of the network but the light client: protocol types shared by every role (header,
blob index, sampling maths, cells, attestations), the generated gRPC stubs (`da.v1`, never
edited), the gRPC edge, storage, the producer, the storage node, metrics, the rollup client, the
`da` command line and the devnet.

- protocol (import only `erasure` and each other): `header`, `signing` (the only blspy importer),
  `sampling`, `cells` (`ProvenCell`, `Row`, the one batch check of served cells and rows),
  `certificate` (`Attestation`, `Certificate`), `errors`.
- the edge: `api` (converters, error table, server, interceptors), the servicers (`serving`, each
  role's `service`) and clients (`client`, each role's remotes and peers). Only these import the
  generated `da.v1`; handlers past them see our types (import-linter contract).
- infrastructure: `store`, `metrics`, `status`, `config`, `backoff`, `encoder_pool` (worker
  processes and Dask clients for the ckzg work, kept out of `erasure`).
- roles and tools: `producer`, `storage_node`, `cli`, `devnet`.

Must not import `light_client`, except the command line, which starts it by module name.
"""
