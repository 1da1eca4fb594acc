"""A real Prometheus server scraping a real `da devnet` on loopback.

Through Prometheus's HTTP API (/api/v1/query) a light client's `da_light_last_confidence` must
reach 0.99 and the producer's `da_blocks_produced_total` must be positive; the alert rules of
deploy/prometheus/alerts.yml are loaded and must evaluate without errors against live data.
The server binary comes from Debian's `prometheus` package (installed when missing, as root).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_devnet import DA, base_port, wait_gone
from tests.test_deploy import PROMETHEUS, ensure_prometheus_binary

WAIT_SECONDS = 240.0
SCRAPE_INTERVAL = "2s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)


def wait_for(predicate: Any, what: str, timeout: float, check: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            last = predicate()
        except (OSError, ValueError, KeyError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    data = tmp_path / "devnet"
    log = open(tmp_path / "devnet.out", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            DA,
            "devnet",
            "--data-dir",
            str(data),
            "--base-port",
            str(base_port()),
            "--block-time",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield data, proc
    finally:
        code = stop(proc)
        log.close()
        assert not wait_gone(str(data)), "processes outlived the devnet"
        assert code == 0, (tmp_path / "devnet.out").read_text()[-3000:]


def scrape_config(data: Path) -> dict[str, Any]:
    """A Prometheus config scraping the devnet's metrics ports (read from its TOML configs)."""

    def targets(pattern: str) -> list[str]:
        ports = [
            tomllib.loads(p.read_text())["metrics-port"]
            for p in sorted((data / "config").glob(pattern))
        ]
        return [f"127.0.0.1:{port}" for port in ports]

    jobs = {
        "da-producer": "producer.toml",
        "da-storage": "storage-*.toml",
        "da-light": "light-*.toml",
    }
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets(pattern)}]}
            for job, pattern in jobs.items()
        ],
    }


@pytest.fixture
def prometheus_server(
    tmp_path: Path, devnet: tuple[Path, subprocess.Popen[bytes]]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = ensure_prometheus_binary("prometheus")
    data, proc = devnet
    wait_for(lambda: len(list((data / "config").glob("*.toml"))) == 6, "devnet configs", 60)
    home = tmp_path / "prometheus"
    home.mkdir()
    shutil.copy(PROMETHEUS / "alerts.yml", home / "alerts.yml")
    (home / "prometheus.yml").write_text(yaml.safe_dump(scrape_config(data)))
    address = f"127.0.0.1:{free_port()}"
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"http://{address}/-/ready", timeout=2),
            "prometheus ready",
            60,
        )
        yield address, server
    finally:
        stop(server)
        log.close()


def query(address: str, promql: str) -> list[dict[str, Any]]:
    url = f"http://{address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    if body["status"] != "success":
        raise ValueError(body)
    return list(body["data"]["result"])


def scalar(address: str, promql: str) -> float | None:
    result = query(address, promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_confidence_and_blocks_from_a_devnet(
    tmp_path: Path,
    devnet: tuple[Path, subprocess.Popen[bytes]],
    prometheus_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    address, server = prometheus_server
    _, devnet_proc = devnet

    def alive() -> None:
        if devnet_proc.poll() is not None:
            raise AssertionError((tmp_path / "devnet.out").read_text()[-3000:])
        if server.poll() is not None:
            raise AssertionError((tmp_path / "prometheus.log").read_text()[-3000:])

    confidence = wait_for(
        lambda: (
            (c := scalar(address, "max(da_light_last_confidence)")) is not None and c >= 0.99 and c
        ),
        "light confidence >= 0.99",
        WAIT_SECONDS,
        alive,
    )
    assert confidence >= 0.99
    blocks = wait_for(
        lambda: scalar(address, "sum(da_blocks_produced_total)"),
        "da_blocks_produced_total > 0",
        30,
        alive,
    )
    assert blocks > 0
    # Every process scraped (a 2-core machine under load may miss a 1 s scrape: wait for it).
    wait_for(lambda: len(up := query(address, "up == 1")) == 6 and up, "six targets up", 60, alive)

    def rules_evaluated() -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://{address}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return (
            rules
            if rules
            and all(
                r.get("lastEvaluation", "").startswith("2")
                and not r["lastEvaluation"].startswith("0001")
                for r in rules
            )
            else []
        )

    rules = wait_for(rules_evaluated, "alert rules evaluated", 30, alive)
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken
