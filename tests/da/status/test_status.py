"""The status server (/, /status.json, /metrics on aiohttp) and each role's status source."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from da import metrics
from da.certificate import Certificate
from da.sampling import CellRef
from da.status import start_status_server
from da.status.light import LightStatus
from da.status.producer import ProducerStatus
from da.status.storage import AttestationStats, StorageStatus
from da.store import headers
from da.store.certificates import put_certificate
from da.store.memory import MemoryStore
from tests.da.client.fakes import make_block

COMMON_KEYS = {"role", "chain_id", "height"}


class Source:
    def status(self) -> dict[str, Any]:
        return {"role": "producer", "chain_id": "c", "height": 7}


async def test_serves_page_json_and_metrics_then_stops() -> None:
    registry = CollectorRegistry()
    metrics.ProducerMetrics(registry).observe_block(3, 1.0)
    async with AsyncExitStack() as stack:
        port = await start_status_server(stack, Source(), registry, port=0)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/") as page:
                assert page.status == 200 and page.content_type == "text/html"
                text = await page.text()
                assert "status.json" in text and "http://" not in text.replace(
                    "http://www.w3.org/2000/svg", ""
                )  # no external assets
            async with session.get(f"{base}/status.json") as status:
                assert await status.json() == {"role": "producer", "chain_id": "c", "height": 7}
            async with session.get(f"{base}/metrics") as exposition:
                assert "da_blocks_produced_total 1.0" in await exposition.text()
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"{base}/", timeout=aiohttp.ClientTimeout(total=2))
        except aiohttp.ClientConnectionError:
            pass
        else:
            raise AssertionError("the status server still answers after its stack closed")


def test_producer_status_lists_recent_blocks() -> None:
    store = MemoryStore()
    block = make_block()
    headers.put_signed_header(store, 1, block.signed.raw, block.signed.signature)
    put_certificate(store, Certificate(1, block.signed.hash, (b"k" * 48,), b"s" * 96))
    source = ProducerStatus(
        chain_id="test",
        store=store,
        head=lambda: 1,
        mempool=lambda: (2, 300),
        encode_seconds={1: 0.25}.get,
        quorum=1,
    )
    status = source.status()
    assert COMMON_KEYS <= status.keys() and status["role"] == "producer"
    assert status["leadership"] == {
        "mode": "single",
        "leader": True,
        "epoch": None,
        "leader_id": None,
    }
    assert status["mempool"] == {"blobs": 2, "bytes": 300}
    [row] = status["blocks"]
    assert row["k"] == block.signed.header.k and row["blobs"] == 3 and row["certified"]
    assert row["encode_seconds"] == 0.25 and row["hash"] == block.signed.hash.hex()


def test_storage_status() -> None:
    registry = CollectorRegistry()
    storage_metrics = metrics.StorageMetrics(registry)
    storage_metrics.cells_repaired.inc(5)
    storage_metrics.observe_cells_collected("light", 7)
    stats = AttestationStats(enabled=True)
    stats.observe(4, True)
    stats.observe(5, False)
    source = StorageStatus(
        "test", MemoryStore(), registry, ["p:1"], ["s:2"], 100, attestation=stats
    )
    status = source.status()
    assert status["role"] == "storage-node" and status["height"] == 0
    assert status["repairs"]["cells_repaired"] == 5
    assert status["repairs"]["cells_collected"] == {"light": 7, "storage": 0}
    assert [p["kind"] for p in status["peers"]] == ["producer", "storage"]
    assert status["attestation"] == {"enabled": True, "accepted": 1, "refused": 1, "last_height": 4}


def test_light_status_records_each_sampled_cell() -> None:
    source = LightStatus("test", lambda: 9, lambda: [{"address": "a", "shunned": False}])
    coords = [CellRef(0, 1), CellRef(1, 70), CellRef(3, 5)]
    source.begin(9, 2, coords)
    sampling = source.status()["heights"][0]
    assert sampling["status"] == "SAMPLING" and sampling["samples"] == 0
    assert {cell[2] for cell in sampling["cells"]} == {"pending"}
    source.finish(9, "UNAVAILABLE", 0.0, {CellRef(0, 1), CellRef(1, 70)}, {CellRef(1, 70)})
    status = source.status()
    assert COMMON_KEYS <= status.keys() and status["role"] == "light-client"
    [height] = status["heights"]
    assert (height["height"], height["status"], height["samples"]) == (9, "UNAVAILABLE", 2)
    assert (height["rows"], height["cols"]) == (4, 128)
    assert height["cells"] == [[0, 1, "verified"], [1, 70, "retried"], [3, 5, "failed"]]
    for h in range(10, 30):
        source.begin(h, 1, [])
    assert len(source.status()["heights"]) == 12 and source.status()["heights"][0]["height"] == 29
