"""Adversarial peers for light-client integration tests, written against the .proto.

Run as a separate process:

    python -m tests.integration.adversary --mode MODE --upstream H:P --listen H:P [--key-file F]

It proxies an honest storage node's HeaderService and ShareService and misbehaves per MODE:

- honest: pure proxy;
- withhold: NOT_FOUND for every GetSamples;
- withhold-parity: answers only cells of columns < 64, silently omitting parity cells;
- corrupt: flips one byte of every cell it serves (its proof no longer verifies);
- other-cell: answers (row, col) with the cell (row, col+1), its valid proof and its coordinate;
- other-cell-same-coord: the same cell and proof, but claiming the asked coordinate;
- forge-signature: headers with a flipped signature byte;
- forge-commitments: headers whose last row commitment is replaced by another G1 point (the
  producer's public key), re-signed with the producer key file (signed, but inconsistent);
- equivocate: a second, validly signed header per height (time_ms + 1), signed with the
  producer key file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import grpc

from da.api.client import open_channel
from da.api.server import HEADER_SERVICE, SHARE_SERVICE, ServerConfig, create_server
from da.header import sign_header, signed_header_from_bytes
from da.signing import KeyPair, read_key_file
from da.v1 import da_pb2, da_pb2_grpc

log = logging.getLogger("adversary")

SAMPLE_MODES = ("withhold", "withhold-parity", "corrupt", "other-cell", "other-cell-same-coord")
HEADER_MODES = ("forge-signature", "forge-commitments", "equivocate")
MODES = ("honest", *SAMPLE_MODES, *HEADER_MODES)
UPSTREAM_TIMEOUT_SECONDS = 5.0
CELLS_PER_EXT_ROW = 128
CELLS_PER_ROW = 64


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
        reply = await _upstream(
            context, lambda: self._stub.GetHeader(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )
        return self._tamper(reply)

    async def SubscribeHeaders(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        try:
            async for reply in self._stub.SubscribeHeaders(request):
                yield self._tamper(reply)
        except grpc.aio.AioRpcError as e:
            await context.abort(e.code(), e.details() or "")

    def _tamper(self, reply: Any) -> Any:
        if self._mode == "forge-signature":
            signature = bytearray(reply.signature)
            signature[10] ^= 0x01
            return da_pb2.SignedHeader(header=reply.header, signature=bytes(signature))
        if self._mode in ("forge-commitments", "equivocate") and self._key is not None:
            header = signed_header_from_bytes(reply.header, reply.signature).header
            if self._mode == "equivocate":
                header = replace(header, time_ms=header.time_ms + 1)
            else:
                commitments = (*header.commitments[:-1], self._key.public)
                header = replace(header, commitments=commitments)
            forged = sign_header(header, self._key.secret)
            return da_pb2.SignedHeader(header=forged.raw, signature=forged.signature)
        return reply


class Shares(da_pb2_grpc.ShareServiceServicer):
    def __init__(self, stub: da_pb2_grpc.ShareServiceStub, mode: str):
        self._stub = stub
        self._mode = mode

    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        if self._mode == "withhold":
            await context.abort(grpc.StatusCode.NOT_FOUND, "withheld")
        if self._mode.startswith("other-cell"):
            return await self._other_cells(request, context)
        reply = await _upstream(
            context, lambda: self._stub.GetSamples(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )
        if self._mode == "withhold-parity":
            kept = [c for c in reply.cells if c.col < CELLS_PER_ROW]
            return da_pb2.GetSamplesResponse(cells=kept)
        if self._mode == "corrupt":
            return da_pb2.GetSamplesResponse(cells=[_corrupted(c) for c in reply.cells])
        return reply

    async def _other_cells(self, request: Any, context: Any) -> Any:
        """Fetch each asked cell's neighbour honestly and pass it off as the answer."""
        shifted = [
            da_pb2.CellCoord(row=c.row, col=(c.col + 1) % CELLS_PER_EXT_ROW)
            for c in request.coords
        ]
        upstream = da_pb2.GetSamplesRequest(height=request.height, coords=shifted)
        reply = await _upstream(
            context, lambda: self._stub.GetSamples(upstream, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )
        if self._mode == "other-cell-same-coord":
            cells = [
                da_pb2.Cell(row=asked.row, col=asked.col, data=cell.data, proof=cell.proof)
                for asked, cell in zip(request.coords, reply.cells, strict=False)
            ]
            return da_pb2.GetSamplesResponse(cells=cells)
        return reply

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await _upstream(
            context, lambda: self._stub.GetRow(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )


def _corrupted(cell: Any) -> Any:
    data = bytearray(cell.data)
    data[-1] ^= 0x01
    return da_pb2.Cell(row=cell.row, col=cell.col, data=bytes(data), proof=cell.proof)


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
    log.info("adversary %s on port %d proxying %s", mode, port, upstream)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--upstream", required=True, metavar="H:P")
    parser.add_argument("--listen", required=True, metavar="H:P")
    parser.add_argument("--key-file", help="producer key (forge-commitments, equivocate)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.mode in ("forge-commitments", "equivocate") and not args.key_file:
        parser.error(f"--mode {args.mode} needs --key-file")
    key = read_key_file(args.key_file) if args.key_file else None
    asyncio.run(serve(args.mode, args.upstream, args.listen, key))


if __name__ == "__main__":
    main()


# --- test-side helpers: run an adversary as a process of a `Cluster` -------------------------


def start_adversary(cluster: Any, name: str, mode: str, upstream: str, *extra: str) -> Any:
    """Start `python -m tests.integration.adversary` as a process `cluster.close()` stops."""
    import sys

    from tests.integration.harness import DaProcess, free_port

    class AdversaryProcess(DaProcess):
        def start(self, wait: bool = True) -> DaProcess:
            import os
            import subprocess

            from tests.integration.harness import ROOT, wait_serving

            log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.adversary", *self.args],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, **self.env}, start_new_session=True,
            )
            if wait:
                wait_serving(self.listen, proc=self.proc)
            return self

    listen = f"127.0.0.1:{free_port()}"
    args = ["--mode", mode, "--upstream", upstream, "--listen", listen, *extra]
    process = AdversaryProcess(name, args, cluster.tmp / f"{name}.log", listen, 0)
    cluster.procs.append(process)
    return process.start()
