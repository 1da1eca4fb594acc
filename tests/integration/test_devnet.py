"""`da devnet`: a real producer, storage nodes and light clients on loopback, driven by the CLI.

`--blocks 3` must end by itself with exit code 0 (every block available to every light client);
SIGTERM must stop every child process; the TOML configs it writes are accepted by the CLI. The
helpers of da/devnet/ that need no processes are tested at the end.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from da.cli.settings import compose_config
from da.config import DevnetConfig
from da.devnet.display import Display
from da.devnet.layout import free_ports, plan_layout, toml_document, write_configs
from da.devnet.run import _verdict
from da.devnet.watch import EncodeClock, HeightView, Watcher
from da.metrics import ProducerMetrics

DA = str(Path(sys.executable).with_name("da"))
DEVNET_TIMEOUT_SECONDS = 240.0


def base_port() -> int:
    """A random base below the ephemeral range (the devnet skips ports that are busy)."""
    return random.Random(os.getpid() ^ time.time_ns()).randrange(20000, 32000, 50)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose arguments mention `text` (e.g. a data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline)
    return found


def wait_gone(text: str, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def devnet_args(data_dir: Path, *extra: str) -> list[str]:
    return [
        DA,
        "devnet",
        "--data-dir",
        str(data_dir),
        "--base-port",
        str(base_port()),
        "--block-time",
        "1",
        *extra,
    ]


def test_devnet_three_blocks_all_available(tmp_path: Path) -> None:
    data = tmp_path / "devnet"
    try:
        done = subprocess.run(
            devnet_args(data, "--blocks", "3"),
            capture_output=True,
            text=True,
            timeout=DEVNET_TIMEOUT_SECONDS,
        )
    finally:
        leftovers = wait_gone(str(data))
    report = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, report
    assert "every one available to every light client" in done.stdout, report
    lines = [line for line in done.stdout.splitlines() if line.startswith("height ")]
    assert len(lines) >= 3, report  # not a TTY: one line per finished height
    assert all(
        "light-1" in line and "light-2" in line and "FAILED" not in line for line in lines
    ), report
    assert not leftovers, f"processes outlived the devnet: {leftovers}"
    pages = re.findall(r"^  (\S+) .* page (http://127\.0\.0\.1:\d+/)", done.stdout, re.M)
    assert len({page for _, page in pages}) == 6, report  # each process's status page
    for name in ("producer", "storage-1", "storage-2", "storage-3", "light-1", "light-2"):
        assert (data / "logs" / f"{name}.log").is_file()
        assert name in {n for n, _ in pages}, report


def test_devnet_stops_every_process_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "devnet"
    proc = subprocess.Popen(
        devnet_args(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + DEVNET_TIMEOUT_SECONDS
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("height ") or not line:
                break
        assert any(x.startswith("height ") for x in lines), "".join(lines)
        assert processes_mentioning(str(data)), "no child processes while running"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert not wait_gone(str(data)), "processes outlived the devnet"


def test_devnet_configs_are_reusable(tmp_path: Path) -> None:
    """The written TOML files compose into valid configs through the CLI."""
    config = DevnetConfig(data_dir=tmp_path, base_port=base_port())
    layout = plan_layout(config, tmp_path)
    write_configs(layout, config)
    producer = compose_config(["producer", "--config", str(layout.producer.config_path)])
    assert producer.quorum == 2 and len(producer.operators) == 3
    storage = compose_config(["storage-node", "--config", str(layout.storage[0].config_path)])
    assert storage.key_file is not None and len(storage.peers) == 2
    assert storage.server.auth_token is None  # no pod holds a token it does not need
    light = compose_config(["light-client", "--config", str(layout.light[0].config_path)])
    assert light.trusted_keys == (layout.producer.public_key,)
    assert len(light.peers) == 3
    again = plan_layout(config, tmp_path)  # keys are reused on a restart
    assert again.producer.public_key == layout.producer.public_key


# --- helpers without processes --------------------------------------------------------------


def test_free_ports_skip_busy_ones() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = free_ports(port, 2)
    assert port not in ports and ports == sorted(ports) and ports[0] > port


def test_toml_document_round_trips() -> None:
    import tomllib

    settings = {"a": 'x"y', "b": 3, "c": 0.5, "d": True, "e": ["p", "q"]}
    assert tomllib.loads(toml_document(settings)) == settings


def test_display_prints_one_line_per_finished_height(tmp_path: Path) -> None:
    config = DevnetConfig(data_dir=tmp_path, base_port=base_port(), light_clients=1)
    layout = plan_layout(config, tmp_path)
    watcher = Watcher(layout)
    view = HeightView(
        1,
        0.0,
        k=1,
        blobs=3,
        payload_bytes=6000,
        encode_seconds=0.02,
        holders={"storage-1"},
        signers=2,
        verdicts={"light-1": ("AVAILABLE", 0.9931)},
        finished=True,
    )
    watcher.heights = {1: view, 2: HeightView(2, 0.0)}
    out = io.StringIO()
    display = Display(layout, out)
    display.update(watcher, "")
    display.update(watcher, "")
    assert out.getvalue() == (
        "height 1 k 1 blobs 3 bytes 6000 encode_ms 20 stored 1/3 cert 2/2 light-1 0.9931\n"
    )


@pytest.mark.parametrize("status", ["AVAILABLE", "UNAVAILABLE"])
def test_verdict_requires_every_light_client(tmp_path: Path, status: str) -> None:
    config = DevnetConfig(data_dir=tmp_path, base_port=base_port(), blocks=1)
    layout = plan_layout(config, tmp_path)
    watcher = Watcher(layout)
    watcher.heights = {
        1: HeightView(
            1,
            0.0,
            finished=True,
            verdicts={"light-1": ("AVAILABLE", 0.99), "light-2": (status, 0.99)},
        )
    }
    code = _verdict(watcher, config, io.StringIO())  # noqa: SLF001
    assert code == (0 if status == "AVAILABLE" else 1)


def test_encode_times_come_from_the_producer_histogram() -> None:
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry)
    clock = EncodeClock()
    views = {h: HeightView(h, 0.0) for h in (1, 2, 3)}
    metrics.observe_block(1, 0.75)
    metrics.observe_block(2, 0.25)
    clock.update(generate_latest(registry).decode(), [views[1], views[2]])
    metrics.observe_block(3, 0.125)
    clock.update(generate_latest(registry).decode(), views.values())
    assert [v.encode_seconds for v in views.values()] == [0.5, 0.5, 0.125]


def test_devnet_producer_group_blocks_all_available(tmp_path: Path) -> None:
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not on PATH: install the Debian package etcd-server")
    data = tmp_path / "devnet"
    try:
        done = subprocess.run(
            devnet_args(
                data,
                "--producers",
                "3",
                "--storage-nodes",
                "1",
                "--light-clients",
                "1",
                "--blocks",
                "2",
            ),
            capture_output=True,
            text=True,
            timeout=DEVNET_TIMEOUT_SECONDS,
        )
    finally:
        leftovers = wait_gone(str(data))
    report = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, report
    assert "every one available to every light client" in done.stdout, report
    assert "producer-3" in done.stdout and "etcd-3" in done.stdout, report
    assert not leftovers, f"processes outlived the devnet: {leftovers}"
