"""Byzantine storage peers for the reliability suite, written against the .proto (they complement
tests/integration/adversary.py, whose modes this suite also uses). Run as a separate process:

    python -m tests.reliability.byzantine --mode MODE --upstream H:P --listen H:P [--key-file F]

It proxies an honest node's HeaderService and ShareService and misbehaves per MODE:

- withhold-unrecoverable: serves, of every block, only the cells of columns 0..62 (every row
  has 63 < 64 cells, columns 63..127 have none: exactly (k+1)*65 cells are missing at k = 1, the
  fewest that make a k = 1 square unrecoverable); GetRow answers UNAVAILABLE;
- withhold-recoverable: serves only row 0's cells of columns 0..63 (a quarter of a k = 1 EDS:
  row 0 is recoverable from its half, then every column from its one cell); GetRow UNAVAILABLE;
- corrupt: flips a byte of every cell it serves, by GetRow and GetSamples (proofs kept);
- other-height: answers for height h with the same coordinates' cells and proofs of height h-1
  (h+1 at height 1): valid proofs, but against another block's commitments;
- slow-loris: honest headers, but GetRow and GetSamples never answer (they sleep for an hour);
- double-header: streams every header honestly, then a second, validly signed header for the
  same height (time_ms + 1, re-signed with the producer key file): an equivocating producer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import grpc

from da.api.client import open_channel
from da.api.server import HEADER_SERVICE, SHARE_SERVICE, ServerConfig, create_server
from da.header import sign_header, signed_header_from_bytes
from da.signing import KeyPair, read_key_file
from da.v1 import da_pb2, da_pb2_grpc

log = logging.getLogger("byzantine")

MODES = ("withhold-unrecoverable", "withhold-recoverable", "corrupt", "other-height",
         "slow-loris", "double-header")
UPSTREAM_TIMEOUT_SECONDS = 5.0
SLOW_LORIS_SECONDS = 3600.0


def kept(mode: str, row: int, col: int) -> bool:
    """Whether a withholding mode serves cell (row, col)."""
    if mode == "withhold-unrecoverable":
        return col < 63
    if mode == "withhold-recoverable":
        return row == 0 and col < 64
    return True


async def _upstream(context: Any, call: Callable[[], Any]) -> Any:
    try:
        return await call()
    except grpc.aio.AioRpcError as e:
        await context.abort(e.code(), e.details() or "")


class Headers(da_pb2_grpc.HeaderServiceServicer):
    def __init__(self, stub: da_pb2_grpc.HeaderServiceStub, mode: str, key: KeyPair | None):
        self._stub = stub
        self._mode = mode
        self._key = key

    async def GetHeader(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await _upstream(
            context, lambda: self._stub.GetHeader(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )

    async def SubscribeHeaders(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        try:
            async for reply in self._stub.SubscribeHeaders(request):
                yield reply
                if self._mode == "double-header" and self._key is not None:
                    yield self._twin(reply)
        except grpc.aio.AioRpcError as e:
            await context.abort(e.code(), e.details() or "")

    def _twin(self, reply: Any) -> Any:
        header = signed_header_from_bytes(reply.header, reply.signature).header
        assert self._key is not None
        forged = sign_header(replace(header, time_ms=header.time_ms + 1), self._key.secret)
        log.info("equivocating at height %d", header.height)
        return da_pb2.SignedHeader(header=forged.raw, signature=forged.signature)


class Shares(da_pb2_grpc.ShareServiceServicer):
    def __init__(self, stub: da_pb2_grpc.ShareServiceStub, mode: str):
        self._stub = stub
        self._mode = mode

    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        if self._mode == "slow-loris":
            await asyncio.sleep(SLOW_LORIS_SECONDS)
        if self._mode.startswith("withhold"):
            coords = [c for c in request.coords if kept(self._mode, c.row, c.col)]
            request = da_pb2.GetSamplesRequest(height=request.height, coords=coords)
            if not coords:
                return da_pb2.GetSamplesResponse()
        if self._mode == "other-height":
            request = da_pb2.GetSamplesRequest(height=other_height(request.height),
                                               coords=request.coords)
        reply = await _upstream(
            context, lambda: self._stub.GetSamples(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )
        return self._tamper(reply)

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        if self._mode == "slow-loris":
            await asyncio.sleep(SLOW_LORIS_SECONDS)
        if self._mode.startswith("withhold"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "withheld")
        if self._mode == "other-height":
            request = da_pb2.GetRowRequest(height=other_height(request.height), row=request.row)
        reply = await _upstream(
            context, lambda: self._stub.GetRow(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )
        return self._tamper(reply)

    def _tamper(self, reply: Any) -> Any:
        if self._mode != "corrupt":
            return reply
        cells = []
        for c in reply.cells:
            data = bytearray(c.data)
            data[100] ^= 0x01
            cells.append(da_pb2.Cell(row=c.row, col=c.col, data=bytes(data), proof=c.proof))
        return type(reply)(cells=cells)


def other_height(height: int) -> int:
    return height - 1 if height > 1 else height + 1


async def serve(mode: str, upstream: str, listen: str, key: KeyPair | None) -> None:
    channel = open_channel(upstream)
    servicers = [
        (da_pb2_grpc.add_HeaderServiceServicer_to_server,
         Headers(da_pb2_grpc.HeaderServiceStub(channel), mode, key)),
        (da_pb2_grpc.add_ShareServiceServicer_to_server,
         Shares(da_pb2_grpc.ShareServiceStub(channel), mode)),
    ]
    config = ServerConfig(listen=listen, rate_limit_per_second=0)
    server, port = await create_server(
        config, servicers, rpc_metrics=None, service_names=[HEADER_SERVICE, SHARE_SERVICE]
    )
    log.info("byzantine %s on port %d proxying %s", mode, port, upstream)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)
    await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--upstream", required=True, metavar="H:P")
    parser.add_argument("--listen", required=True, metavar="H:P")
    parser.add_argument("--key-file", help="producer key (double-header)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.mode == "double-header" and not args.key_file:
        parser.error("--mode double-header needs --key-file")
    key = read_key_file(args.key_file) if args.key_file else None
    asyncio.run(serve(args.mode, args.upstream, args.listen, key))


if __name__ == "__main__":
    main()


# --- test side: run a byzantine peer as a process that `cluster.close()` stops ---------------


def start_byzantine(cluster: Any, name: str, mode: str, upstream: str, *extra: str) -> Any:
    """Start `python -m tests.reliability.byzantine` as a process of `cluster`."""
    from tests.integration.harness import ROOT, DaProcess, free_port, wait_serving

    class ByzantineProcess(DaProcess):
        def start(self, wait: bool = True) -> DaProcess:
            log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.byzantine", *self.args],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, **self.env}, start_new_session=True,
            )
            if wait:
                wait_serving(self.listen, proc=self.proc)
            return self

    listen = f"127.0.0.1:{free_port()}"
    args = ["--mode", mode, "--upstream", upstream, "--listen", listen, *extra]
    process = ByzantineProcess(name, args, cluster.tmp / f"{name}.log", listen, 0)
    cluster.procs.append(process)
    return process.start()
