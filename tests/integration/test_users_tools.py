"""Users' tools against real processes (PROTOCOL.md §15): a rollup's loop through `da.client`
(submit, wait, read back verified, certificate, availability), the command line on a real node, and
the status pages of every role in a real headless Chromium (Debian `chromium`, `chromium-driver`).

One small network for the module: a producer, a storage node that attests, a light client."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from da.client import DAClient
from tests.integration.harness import DA, Cluster, DaProcess, keygen, wait_until

NAMESPACE = b"rollup-1"
SAMPLES = 8
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
)


@dataclass
class Network:
    cluster: Cluster
    producer: DaProcess
    storage: DaProcess
    light: DaProcess
    operator: str  # the storage node's public key (hex)

    def client(self) -> DAClient:
        return DAClient(
            producers=[self.producer.listen],
            storage=[self.storage.listen],
            light_clients=[self.light.listen],
            chain_id=self.cluster.chain_id,
            trusted_keys=[self.cluster.producer_pub],
            timeout=10,
        )


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    cluster = Cluster(tmp_path_factory.mktemp("users"))
    try:
        operator_key = cluster.tmp / "operator.key"
        operator = keygen(operator_key)
        producer = cluster.producer("producer", "--quorum", "1", "--operator", operator)
        storage = cluster.storage_node("storage", producer, "--key-file", str(operator_key))
        light = cluster.light_client("light", [storage.listen], "--samples", str(SAMPLES))
        yield Network(cluster, producer, storage, light, operator)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()


def test_a_rollups_loop(network: Network) -> None:
    """Submit, wait until certified, read back verified; certificate and availability."""
    batches = [b"rollup batch %d " % i * 50 for i in range(2)]
    with network.client() as client:
        receipts = [
            client.submit(NAMESPACE, batch, wait="certified", timeout=90) for batch in batches
        ]
        for receipt, batch in zip(receipts, batches, strict=True):
            assert receipt.state == "CERTIFIED" and receipt.height >= 1
            blobs = client.get_blobs(receipt.height, NAMESPACE)
            assert batch in [blob.data for blob in blobs]
            assert receipt.blob_hash in [blob.blob_hash for blob in blobs]
        height = receipts[-1].height
        cert = client.certificate(height, [network.operator], quorum=1)
        assert cert.header_hash == client.header(height).hash
        verdict = wait_until(
            lambda: _available(client, height), timeout=60, what="light client verdict"
        )
        assert verdict.samples == SAMPLES and verdict.confidence > 0


def _available(client: DAClient, height: int) -> Any:
    verdict = client.availability(height)
    return verdict if verdict.status == "AVAILABLE" else None


def test_the_command_line_on_real_nodes(network: Network, tmp_path: Path) -> None:
    data = tmp_path / "blob.txt"
    data.write_bytes(b"from the command line\n")
    submitted = _da_json(
        "blob",
        "submit",
        "--node",
        network.producer.listen,
        "--namespace",
        "cli",
        "--file",
        str(data),
        "--wait",
    )
    assert submitted["state"] in ("INCLUDED", "CERTIFIED")
    trust = ["--chain-id", network.cluster.chain_id, "--trusted-key", network.cluster.producer_pub]
    got = _da_json(
        "blob",
        "get",
        "--node",
        network.storage.listen,
        "--namespace",
        "cli",
        "--height",
        str(submitted["height"]),
        *trust,
    )
    assert [bytes.fromhex(b["data_hex"]) for b in got["blobs"]] == [data.read_bytes()]
    header = _da_json("header", "get", "--node", network.storage.listen, *trust)
    assert header["height"] >= submitted["height"] and header["verified"] is True
    health = _da_json("health", "--node", network.producer.listen, "--node", network.light.listen)
    assert health["serving"] is True
    wrong = subprocess.run(
        [
            DA,
            "header",
            "get",
            "--node",
            network.storage.listen,
            "--chain-id",
            "other",
            "--trusted-key",
            network.cluster.producer_pub,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1 and "other" in wrong.stderr


def _da_json(*argv: str) -> Any:
    done = subprocess.run([DA, *argv, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- status pages in a real browser -------------------------------------------------------------


def status_json(process: DaProcess) -> Any:
    url = f"http://127.0.0.1:{process.metrics_port}/status.json"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "needs the Debian packages chromium and chromium-driver "
            "(scripts/system-deps.sh installs them as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path and browser binary: selenium-manager never downloads anything.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, process: DaProcess, role: str, shot: Path) -> None:
    """Load the page, wait until it drew the role, save a screenshot; no console errors."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"http://127.0.0.1:{process.metrics_port}/")
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "title").text.startswith(role))
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    driver.save_screenshot(str(shot))
    print(f"screenshot of the {role} page: {shot}")


def _submit(network: Network, data: bytes) -> int:
    with network.client() as client:
        return client.submit(NAMESPACE, data, wait="included", timeout=60).height


@pytest.mark.browser
def test_light_client_page_draws_the_sampled_square(
    network: Network, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    first = _submit(network, b"drawn on the light client's page")
    wait_until(
        lambda: any(
            h["height"] == first and h["status"] == "AVAILABLE"
            for h in status_json(network.light)["heights"]
        ),
        timeout=60,
        what=f"height {first} AVAILABLE",
    )
    open_page(browser, network.light, "light-client", tmp_path / "light-client.png")
    row = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f'svg[data-height="{first}"]')
    )
    assert "AVAILABLE" in row.find_element(By.XPATH, "./ancestor::tr").text
    verified = row.find_elements(By.CSS_SELECTOR, "rect.cell.verified, rect.cell.retried")
    assert len(verified) == SAMPLES
    assert row.find_elements(By.CSS_SELECTOR, "rect.cell.failed") == []

    second = _submit(network, b"a new height arrives")
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'svg[data-height="{second}"]')
    )
    cells = browser.find_elements(By.CSS_SELECTOR, f'svg[data-height="{second}"] rect.cell')
    assert 0 < len(cells) <= SAMPLES
    browser.save_screenshot(str(tmp_path / "light-client-updated.png"))


@pytest.mark.browser
def test_storage_node_and_producer_pages(network: Network, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    height = _submit(network, b"shown on the producer's page")
    wait_until(
        lambda: status_json(network.storage)["height"] >= height,
        timeout=60,
        what="storage node holds the block",
    )
    open_page(browser, network.storage, "storage-node", tmp_path / "storage-node.png")
    text = browser.find_element(By.ID, "content").text
    assert network.producer.listen in text and "Attestations" in text
    open_page(browser, network.producer, "producer", tmp_path / "producer.png")
    wait_for_text(browser, f"{height}")
    status = status_json(network.producer)
    assert status["role"] == "producer" and status["leadership"]["leader"] is True
    assert status["blocks"][0]["height"] >= height and status["blocks"][0]["k"] >= 1


def wait_for_text(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: text in d.find_element(By.ID, "content").text)


def test_status_json_common_keys(network: Network) -> None:
    for process, role in [
        (network.producer, "producer"),
        (network.storage, "storage-node"),
        (network.light, "light-client"),
    ]:
        status = status_json(process)
        assert status["role"] == role and status["chain_id"] == network.cluster.chain_id
        assert isinstance(status["height"], int)
