"""The generated stubs in da/v1 must match proto/da/v1/da.proto (`make proto` regenerates them)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(ROOT / "proto/da/v1/da.proto"),
        ],
        check=True,
    )
    for name in ("da_pb2.py", "da_pb2.pyi", "da_pb2_grpc.py"):
        fresh = (tmp_path / "da/v1" / name).read_text()
        kept = (ROOT / "da/v1" / name).read_text()
        assert fresh == kept, f"da/v1/{name} is stale: run `make proto`"
