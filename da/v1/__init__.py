"""Generated protobuf and gRPC stubs for package da.v1: regenerate with `make proto`, never edit."""
