"""Adversarial storage peers for the integration and reliability suites, written against the .proto.

Run as a separate process (tests start one with `start_adversary`):

    python -m tests.integration.adversary --mode MODE --upstream H:P --listen H:P [--key-file F]

It proxies an honest node's HeaderService and ShareService and misbehaves per MODE; every call a
mode does not name below is proxied unchanged.

- honest: pure proxy;
- withhold: NOT_FOUND for every GetSamples;
- withhold-parity: answers only cells of columns < 64, silently omitting parity cells;
- original-cells: serves only the cells of the original columns 0..63 of every row, like a node
  keeping just the original data square; GetRow answers UNAVAILABLE (a storage node whose only
  source it is must rebuild every row from cells);
- withhold-unrecoverable: serves, of every block, only the cells of columns 0..62 (every row
  has 63 < 64 cells, columns 63..127 have none: exactly (k+1)*65 cells are missing at k = 1, the
  fewest that make a k = 1 square unrecoverable); GetRow answers UNAVAILABLE;
- withhold-recoverable: serves only row 0's cells of columns 0..63 (a quarter of a k = 1 EDS:
  row 0 is recoverable from its half, then every column from its one cell); GetRow UNAVAILABLE;
- corrupt: flips the last byte of every cell GetSamples serves (its proof no longer verifies);
  GetRow is honest;
- corrupt-rows: flips byte 100 of every cell it serves, by GetRow and GetSamples (proofs kept);
- other-cell: answers (row, col) with the cell (row, col+1), its valid proof and its coordinate;
- other-cell-same-coord: the same cell and proof, but claiming the asked coordinate;
- other-height: answers for height h with the same coordinates' cells and proofs of height h-1
  (h+1 at height 1): valid proofs, but against another block's commitments;
- slow-loris: honest headers, but GetRow and GetSamples never answer (they sleep for an hour);
- forge-signature: headers (GetHeader and the stream) with a flipped signature byte;
- forge-commitments: headers whose last row commitment is replaced by another G1 point (the
  producer's public key), re-signed with the producer key file (signed, but inconsistent);
- equivocate: every header replaced by a second, validly signed header for its height
  (time_ms + 1), signed with the producer key file;
- double-header: streams every header honestly, then a second, validly signed header for the
  same height (time_ms + 1, re-signed with the producer key file); GetHeader is honest.

Each mode is one subclass of the honest `Proxy`, overriding only the calls it misbehaves in.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import grpc

from da.api.client import open_channel
from da.api.config import HEADER_SERVICE, SHARE_SERVICE, ServerConfig
from da.api.server import create_server, stop_server
from da.header import Header, sign_header, signed_header_from_bytes
from da.signing import KeyPair, read_key_file
from da.v1 import da_pb2, da_pb2_grpc
from erasure.constants import CELLS_PER_EXT_ROW, CELLS_PER_ROW
from tests.integration.harness import ROOT, Cluster, DaProcess, free_port, wait_serving

log = logging.getLogger("adversary")

MODULE = "tests.integration.adversary"
UPSTREAM_TIMEOUT_SECONDS = 5.0
SLOW_LORIS_SECONDS = 3600.0
SHUTDOWN_GRACE_SECONDS = 1.0


async def _upstream(context: Any, call: Callable[[], Any]) -> Any:
    """`call()` to the upstream node; its error status is passed on to our caller."""
    try:
        return await call()
    except grpc.aio.AioRpcError as e:
        await context.abort(e.code(), e.details() or "")


class Proxy(da_pb2_grpc.HeaderServiceServicer, da_pb2_grpc.ShareServiceServicer):
    """Mode honest: every HeaderService and ShareService call forwarded to the upstream node."""

    def __init__(self, channel: grpc.aio.Channel, key: KeyPair | None) -> None:
        self._headers = da_pb2_grpc.HeaderServiceStub(channel)
        self._shares = da_pb2_grpc.ShareServiceStub(channel)

    async def GetHeader(self, request: Any, context: Any) -> Any:  # noqa: N802
        reply = await _upstream(
            context, lambda: self._headers.GetHeader(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )
        return self.header(reply)

    async def SubscribeHeaders(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        try:
            async for reply in self._headers.SubscribeHeaders(request):
                for header in self.streamed(reply):
                    yield header
        except grpc.aio.AioRpcError as e:
            await context.abort(e.code(), e.details() or "")

    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await _upstream(
            context, lambda: self._shares.GetSamples(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await _upstream(
            context, lambda: self._shares.GetRow(request, timeout=UPSTREAM_TIMEOUT_SECONDS)
        )

    def header(self, reply: Any) -> Any:
        """The SignedHeader passed on for an upstream one, by GetHeader and by the stream."""
        return reply

    def streamed(self, reply: Any) -> Iterator[Any]:
        """The SignedHeaders the stream passes on, in order, for one upstream header."""
        yield self.header(reply)


# --- header modes -----------------------------------------------------------------------------


class ForgeSignature(Proxy):
    def header(self, reply: Any) -> Any:
        signature = bytearray(reply.signature)
        signature[10] ^= 0x01
        return da_pb2.SignedHeader(header=reply.header, signature=bytes(signature))


class _Resigning(Proxy):
    """A mode that signs headers of its own with the producer's key (`--key-file`)."""

    def __init__(self, channel: grpc.aio.Channel, key: KeyPair | None) -> None:
        if key is None:
            raise ValueError(f"{type(self).__name__} needs the producer key (--key-file)")
        super().__init__(channel, key)
        self._key = key

    def _signed(self, header: Header) -> Any:
        forged = sign_header(header, self._key.secret)
        return da_pb2.SignedHeader(header=forged.raw, signature=forged.signature)


def _decoded(reply: Any) -> Header:
    return signed_header_from_bytes(reply.header, reply.signature).header


def _twin(header: Header) -> Header:
    """Another header for the same height: what an equivocating producer signs."""
    return replace(header, time_ms=header.time_ms + 1)


class ForgeCommitments(_Resigning):
    def header(self, reply: Any) -> Any:
        header = _decoded(reply)
        commitments = (*header.commitments[:-1], self._key.public)
        return self._signed(replace(header, commitments=commitments))


class Equivocate(_Resigning):
    def header(self, reply: Any) -> Any:
        return self._signed(_twin(_decoded(reply)))


class DoubleHeader(_Resigning):
    def streamed(self, reply: Any) -> Iterator[Any]:
        yield reply
        header = _decoded(reply)
        twin = self._signed(_twin(header))
        log.info("equivocating at height %d", header.height)
        yield twin


# --- share modes ------------------------------------------------------------------------------


class Withhold(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        await context.abort(grpc.StatusCode.NOT_FOUND, "withheld")


class WithholdParity(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        reply = await super().GetSamples(request, context)
        kept = [c for c in reply.cells if c.col < CELLS_PER_ROW]
        return da_pb2.GetSamplesResponse(cells=kept)


class _WithholdCells(Proxy):
    """Serves only the cells `kept` allows, asking upstream for no others; no whole rows."""

    def kept(self, row: int, col: int) -> bool:
        raise NotImplementedError

    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        coords = [c for c in request.coords if self.kept(c.row, c.col)]
        if not coords:
            return da_pb2.GetSamplesResponse()
        kept = da_pb2.GetSamplesRequest(height=request.height, coords=coords)
        return await super().GetSamples(kept, context)

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        await context.abort(grpc.StatusCode.UNAVAILABLE, "withheld")


class OriginalCells(_WithholdCells):
    def kept(self, row: int, col: int) -> bool:
        return col < CELLS_PER_ROW


class WithholdUnrecoverable(_WithholdCells):
    def kept(self, row: int, col: int) -> bool:
        return col < CELLS_PER_ROW - 1


class WithholdRecoverable(_WithholdCells):
    def kept(self, row: int, col: int) -> bool:
        return row == 0 and col < CELLS_PER_ROW


def _flipped(cell: Any, index: int) -> Any:
    """`cell` with the lowest bit of its data byte `index` flipped, proof kept."""
    data = bytearray(cell.data)
    data[index] ^= 0x01
    return da_pb2.Cell(row=cell.row, col=cell.col, data=bytes(data), proof=cell.proof)


class Corrupt(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        reply = await super().GetSamples(request, context)
        return da_pb2.GetSamplesResponse(cells=[_flipped(c, -1) for c in reply.cells])


class CorruptRows(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        reply = await super().GetSamples(request, context)
        return da_pb2.GetSamplesResponse(cells=[_flipped(c, 100) for c in reply.cells])

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        reply = await super().GetRow(request, context)
        return da_pb2.GetRowResponse(cells=[_flipped(c, 100) for c in reply.cells])


class OtherCell(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        """Fetch each asked cell's neighbour honestly and pass it off as the answer."""
        shifted = [
            da_pb2.CellCoord(row=c.row, col=(c.col + 1) % CELLS_PER_EXT_ROW) for c in request.coords
        ]
        upstream = da_pb2.GetSamplesRequest(height=request.height, coords=shifted)
        return await super().GetSamples(upstream, context)


class OtherCellSameCoord(OtherCell):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        reply = await super().GetSamples(request, context)
        cells = [
            da_pb2.Cell(row=asked.row, col=asked.col, data=cell.data, proof=cell.proof)
            for asked, cell in zip(request.coords, reply.cells, strict=False)
        ]
        return da_pb2.GetSamplesResponse(cells=cells)


def _other_height(height: int) -> int:
    return height - 1 if height > 1 else height + 1


class OtherHeight(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        moved = da_pb2.GetSamplesRequest(
            height=_other_height(request.height), coords=request.coords
        )
        return await super().GetSamples(moved, context)

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        moved = da_pb2.GetRowRequest(height=_other_height(request.height), row=request.row)
        return await super().GetRow(moved, context)


class SlowLoris(Proxy):
    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        await asyncio.sleep(SLOW_LORIS_SECONDS)
        return await super().GetSamples(request, context)

    async def GetRow(self, request: Any, context: Any) -> Any:  # noqa: N802
        await asyncio.sleep(SLOW_LORIS_SECONDS)
        return await super().GetRow(request, context)


MODES: dict[str, type[Proxy]] = {
    "honest": Proxy,
    "withhold": Withhold,
    "withhold-parity": WithholdParity,
    "original-cells": OriginalCells,
    "withhold-unrecoverable": WithholdUnrecoverable,
    "withhold-recoverable": WithholdRecoverable,
    "corrupt": Corrupt,
    "corrupt-rows": CorruptRows,
    "other-cell": OtherCell,
    "other-cell-same-coord": OtherCellSameCoord,
    "other-height": OtherHeight,
    "slow-loris": SlowLoris,
    "forge-signature": ForgeSignature,
    "forge-commitments": ForgeCommitments,
    "equivocate": Equivocate,
    "double-header": DoubleHeader,
}
KEYED_MODES = tuple(name for name, mode in MODES.items() if issubclass(mode, _Resigning))


# --- the process ------------------------------------------------------------------------------


async def serve(mode: str, upstream: str, listen: str, key: KeyPair | None) -> None:
    """Serve `mode` on `listen`, proxying `upstream`, until SIGTERM or SIGINT."""
    async with open_channel(upstream) as channel:
        proxy = MODES[mode](channel, key)
        servicers = [
            (da_pb2_grpc.add_HeaderServiceServicer_to_server, proxy),
            (da_pb2_grpc.add_ShareServiceServicer_to_server, proxy),
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
        await stop_server(server, grace=SHUTDOWN_GRACE_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--upstream", required=True, metavar="H:P")
    parser.add_argument("--listen", required=True, metavar="H:P")
    parser.add_argument("--key-file", help=f"producer key ({', '.join(KEYED_MODES)})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.mode in KEYED_MODES and not args.key_file:
        parser.error(f"--mode {args.mode} needs --key-file")
    key = read_key_file(args.key_file) if args.key_file else None
    asyncio.run(serve(args.mode, args.upstream, args.listen, key))


# --- test side: run an adversary as a process that `cluster.close()` stops --------------------


class AdversaryProcess(DaProcess):
    """`python -m tests.integration.adversary ARGS` in place of `da ARGS`."""

    def start(self, wait: bool = True) -> DaProcess:
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, *self.args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        if wait:
            wait_serving(self.listen, proc=self.proc)
        return self


def start_adversary(
    cluster: Cluster, name: str, mode: str, upstream: str, *extra: str
) -> DaProcess:
    """Start an adversary in `mode` proxying `upstream`, as a process of `cluster`."""
    listen = f"127.0.0.1:{free_port()}"
    args = ["--mode", mode, "--upstream", upstream, "--listen", listen, *extra]
    process = AdversaryProcess(name, args, cluster.tmp / f"{name}.log", listen, 0)
    cluster.procs.append(process)
    return process.start()


if __name__ == "__main__":
    main()
