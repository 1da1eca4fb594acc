"""`da devnet`: a whole network on loopback, for trying the system and for end-to-end tests.

Starts a producer, storage nodes (attesting, with their own keys) and light clients as separate
`da` processes, each from a TOML config file written into the data directory (so an operator can
read and reuse them), submits demo blobs through the gRPC API and shows per height: size, encode
time, how many storage nodes hold the block, the certificate and every light client's confidence.

The devnet only talks to its processes through their command lines, gRPC and /metrics; it never
imports the producer, storage node or light client code. Every child runs in its own session
(process group) and is told by the kernel to stop if the devnet dies; `run` stops them all
(SIGTERM, wait, SIGKILL) on every way out.

Layout: `layout` (ports, keys, TOML configs), `processes` (supervision), `watch` (gRPC polls and
/metrics), `display` (the live table), `run` (the whole run and its verdict).
"""

from da.devnet.run import run

__all__ = ["run"]
