"""Everything of the network but the light client: protocol types shared by every role (header,
blob index, sampling maths), the generated gRPC stubs (`da.v1`, never edited), the gRPC edge,
storage, the producer, the storage node, metrics and the `da` command line.

The protocol modules (`da.header`, `da.signing`, `da.sampling`) import only `erasure`; nothing here
imports `light_client` except the command line and the devnet, which start it.
"""
