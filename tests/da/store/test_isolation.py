"""STYLE rule 4: `da/store/rocks.py` is the only module that imports rocksdict."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_rocks_module_imports_rocksdict() -> None:
    importers = {
        path.relative_to(ROOT).as_posix()
        for package in ["erasure", "da", "light_client"]
        for path in (ROOT / package).rglob("*.py")
        if "rocksdict" in imported_modules(path)
    }
    assert importers == {"da/store/rocks.py"}
