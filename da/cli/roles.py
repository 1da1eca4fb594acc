"""Running a role until it ends or a signal arrives, and `da keygen`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import signal
from collections.abc import Callable
from typing import Any

from da.cli.common import EXIT_OK
from da.cli.settings import config_from_args
from da.errors import DAError

log = logging.getLogger("da")

# Role modules, imported only when their command runs (`async def run(config)`).
ROLE_MODULES = {
    "producer": "da.producer.node",
    "storage-node": "da.storage_node.node",
    "light-client": "light_client.node",
    "devnet": "da.devnet",
}


def cmd_role(args: argparse.Namespace) -> int:
    """Compose and validate the role's config, then run it until it ends or a signal arrives."""
    config = config_from_args(args)
    try:
        module = importlib.import_module(ROLE_MODULES[args.command])
    except ImportError as e:
        raise DAError(f"{args.command} is not available in this build: {e}") from e
    log.info("starting %s: %s", args.command, config)
    return asyncio.run(run_until_signal(lambda: module.run(config)))


async def run_until_signal(start: Callable[[], Any]) -> int:
    """Run `start()` (a coroutine, or a plain result) as a task; SIGTERM/SIGINT cancel it and
    yield exit code 0. An int result is the exit code (devnet); None means 0."""
    loop = asyncio.get_running_loop()
    result = start()
    if not inspect.isawaitable(result):
        return int(result or EXIT_OK)
    task = asyncio.ensure_future(_as_coroutine(result))
    signalled: list[int] = []

    def on_signal(signum: int) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        signalled.append(signum)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return int(await task or EXIT_OK)
    except asyncio.CancelledError:
        if signalled:
            return EXIT_OK
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


# --- keygen ---------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from da.signing import generate_keypair, write_key_file

    keypair = generate_keypair()
    write_key_file(args.out, keypair, overwrite=args.force)
    print(keypair.public.hex())
    return EXIT_OK
