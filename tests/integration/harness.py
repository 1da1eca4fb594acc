"""Start real `da` processes on loopback for integration tests, and stop them.

Every process gets its own data directory and log file under the test's tmp_path; `DaProcess`
waits until the process's gRPC health service answers SERVING. Nothing here mocks our components.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
DA = str(Path(sys.executable).with_name("da"))
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    """Run `da keygen --out path`; return the public key hex it prints."""
    out = subprocess.run(
        [DA, "keygen", "--out", str(path)], check=True, capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip().split()[-1]


def wait_serving(
    target: str, timeout: float = START_TIMEOUT_SECONDS, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until the gRPC health service at target answers SERVING (overall status "")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {target} exited with {proc.returncode}")
        try:
            with grpc.insecure_channel(target) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{target} not SERVING within {timeout} s")


@dataclass
class DaProcess:
    """One running `da <role> ...` process with its log file; `stop()` ends it gracefully."""

    name: str
    args: list[str]
    log_path: Path
    listen: str
    metrics_port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self, wait: bool = True) -> DaProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [DA, *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        if wait:
            try:
                wait_serving(self.listen, proc=self.proc)
            except Exception as e:
                raise RuntimeError(f"{self.name} did not start:\n{self.log()}") from e
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def kill9(self) -> None:
        """kill -9: no cleanup at all, as in a crash. The whole process group (the process is a
        session leader): its encoding pool's forkserver and workers would outlive it otherwise."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


class Cluster:
    """Factory for the processes of one test; `close()` stops them all (the `cluster` fixture)."""

    def __init__(self, tmp: Path, chain_id: str = "testchain") -> None:
        self.tmp = tmp
        self.chain_id = chain_id
        self.procs: list[DaProcess] = []
        self.producer_key_file = tmp / "producer.key"
        self.producer_pub = keygen(self.producer_key_file)

    def spawn(
        self,
        name: str,
        role_args: Sequence[str],
        *,
        wait: bool = True,
        listen_port: int | None = None,
    ) -> DaProcess:
        port = listen_port or free_port()
        metrics = free_port()
        data = self.tmp / name
        data.mkdir(exist_ok=True)
        listen = f"127.0.0.1:{port}"
        args = [
            *role_args,
            "--data-dir",
            str(data),
            "--listen",
            listen,
            "--metrics-port",
            str(metrics),
        ]
        p = DaProcess(name, args, self.tmp / f"{name}.log", listen, metrics)
        self.procs.append(p)
        return p.start(wait=wait)

    def producer(self, name: str = "producer", *extra: str, **kw: object) -> DaProcess:
        return self.spawn(
            name,
            [
                "producer",
                "--key-file",
                str(self.producer_key_file),
                "--chain-id",
                self.chain_id,
                "--block-time",
                "1",
                "--workers",
                "1",
                *extra,
            ],
            **kw,
        )  # type: ignore[arg-type]

    def storage_node(self, name: str, producer: DaProcess, *extra: str, **kw: object) -> DaProcess:
        return self.spawn(
            name,
            [
                "storage-node",
                "--producer",
                producer.listen,
                "--chain-id",
                self.chain_id,
                "--trusted-key",
                self.producer_pub,
                *extra,
            ],
            **kw,
        )  # type: ignore[arg-type]

    def light_client(self, name: str, peers: Sequence[str], *extra: str, **kw: object) -> DaProcess:
        peer_args = [a for p in peers for a in ("--peer", p)]
        return self.spawn(
            name,
            [
                "light-client",
                *peer_args,
                "--chain-id",
                self.chain_id,
                "--trusted-key",
                self.producer_pub,
                *extra,
            ],
            **kw,
        )  # type: ignore[arg-type]

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} =====\n{p.log()}" for p in self.procs)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.25, what: str = ""):  # type: ignore[no-untyped-def]
    """Poll predicate() until it returns a truthy value; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - a not-yet-ready server raises; keep polling
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what or predicate}: last error {last_exc!r}")


def scrape(metrics_port: int) -> str:
    """The Prometheus text exposition of a process."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of one sample in exposition text, or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and (
                labels is None or all(s.labels.get(k) == v for k, v in labels.items())
            ):
                return float(s.value)
    return None


def iter_lines(path: Path) -> Iterator[dict[str, object]]:
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)
