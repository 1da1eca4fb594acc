"""The `da` command (PROTOCOL.md §15): argparse subcommands, TOML config files, logging, signals.

The only place that reads TOML files and flags and composes them into config dataclasses. Roles
are imported lazily and run as `asyncio.run(module.run(config))`; SIGTERM/SIGINT cancel the run
task and the command exits 0. Exit codes: 0 success, 1 runtime or RPC failure (the message
shows the gRPC code), 2 usage or configuration error. Expected failures print one line on
stderr, never a traceback.

Layout: `app` (main, logging, exit codes), `parser` (argparse subcommands), `settings` (TOML file +
flags -> config dataclasses), `roles` (running a role until a signal; keygen), `nodes` (commands
that talk to nodes through `da.client`), `common` (what they share). The console script is
`da = "da.cli:main"`.

Must not import a role package (producer, storage node, light client, devnet) at module level:
`roles.ROLE_MODULES` names them and `da <role>` imports only the one it runs. Must not import
`da.v1`: node commands go through `da.client`.
"""

from da.cli.app import main

__all__ = ["main"]
