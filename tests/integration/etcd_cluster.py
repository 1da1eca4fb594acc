"""A real etcd cluster on loopback for the producer-group tests: free ports, its own data
directories, stopped (and its files removed) by `close()`. Needs the `etcd` binary (Debian:
`etcd-server`, 3.4+; `scripts/install-etcd.sh` installs it)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from da.devnet.layout import etcd_member_argv
from tests.integration.harness import free_port

ETCD = shutil.which("etcd")
START_TIMEOUT_SECONDS = 30.0


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            url = f"http://{self.endpoint}/health"
            with urllib.request.urlopen(url, timeout=1.0) as reply:  # noqa: S310 - loopback
                return bool(json.load(reply).get("health") == "true")
        except OSError:
            return False


class EtcdCluster:
    """`size` members on loopback, started together (`initial-cluster-state new`)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        if ETCD is None:
            raise RuntimeError("etcd is not on PATH: install the Debian package etcd-server")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.members = [
            EtcdMember(f"m{i}", free_port(), free_port(), root / f"m{i}", root / f"m{i}.log")
            for i in range(size)
        ]
        self._initial = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)
        for member in self.members:
            self.start(member, wait=False)
        self.wait_healthy()

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def etcd_args(self) -> list[str]:
        """`--etcd H:P` for every member, for a `da producer` command line."""
        return [a for e in self.endpoints for a in ("--etcd", e)]

    def start(self, member: EtcdMember, *, wait: bool = True) -> None:
        args = etcd_member_argv(
            binary=str(ETCD),
            name=member.name,
            data_dir=member.data_dir,
            client=f"http://127.0.0.1:{member.client_port}",
            peer=f"http://127.0.0.1:{member.peer_port}",
            cluster=self._initial,
            token=f"t{self.members[0].client_port}",
        ) + ["--heartbeat-interval", "100", "--election-timeout", "1000"]
        log = open(member.log_path, "ab")  # noqa: SIM115 - closed with the process
        member.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            self.wait_healthy([member])

    def wait_healthy(self, members: list[EtcdMember] | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for member in members or self.members:
            while not member.healthy():
                if not member.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"etcd {member.name} not healthy:\n{self.logs()}")
                time.sleep(0.1)

    def leader(self) -> EtcdMember:
        """The member that is raft leader now (asked over its HTTP /v3 status endpoint)."""
        for member in self.members:
            if not member.alive():
                continue
            request = urllib.request.Request(
                f"http://{member.endpoint}/v3/maintenance/status", data=b"{}", method="POST"
            )
            with urllib.request.urlopen(request, timeout=2.0) as reply:  # noqa: S310 - loopback
                status = json.load(reply)
            if status.get("leader") == status["header"]["member_id"]:
                return member
        raise RuntimeError("no etcd member reports itself leader")

    def kill9(self, member: EtcdMember) -> None:
        if member.proc is not None and member.proc.poll() is None:
            member.proc.send_signal(signal.SIGKILL)
            member.proc.wait(10)

    def close(self) -> None:
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.terminate()
                try:
                    member.proc.wait(10)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                    member.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(
            f"===== etcd {m.name} =====\n{m.log_path.read_text(errors='replace')[-3000:]}"
            for m in self.members
            if m.log_path.exists()
        )
