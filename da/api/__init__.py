"""The gRPC edge: the one table mapping our errors to status codes, conversions between protobuf
messages and our types, server construction (health, reflection, interceptors), auth and rate
limits. Only this package and the generated stubs touch protobuf messages."""
