"""The gRPC edge, one module per job:

- `convert`: protobuf messages <-> our types, validating untrusted bytes on the way in (the one
  home of message building: servicers and clients call it rather than build cells or blobs);
- `errors`: the one table mapping our errors to status codes, applied by an interceptor;
- `config`: `ServerConfig` (listen address, TLS, token, limits), defaults, method and service
  names; `interceptors`: metrics, errors, per-connection and per-host limits, bearer auth;
- `server`: `create_server` / `stop_server` (health, reflection, binding);
- `client`: channels, timeouts, bearer metadata for our own clients.

Imports the protocol modules and `da.v1`; never a role package (producer, storage node, light
client), so every role builds on the same edge.
"""
