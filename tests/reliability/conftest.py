"""Reliability and attack suite: its markers (the `cluster` factory is in tests/conftest.py),
and the `soak` marker (deselected unless `--soak` is given or DA_SOAK=1 is set; `make soak`
does both)."""

from __future__ import annotations

import os

import pytest

SOAK_ENV = "DA_SOAK"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long soak tests (tests/reliability, marker `soak`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long soak run; only with --soak or DA_SOAK=1")
    config.addinivalue_line("markers", "reliability: the reliability and attack suite")


def soak_enabled(config: pytest.Config) -> bool:
    if config.getoption("--soak", default=False):
        return True
    return os.environ.get(SOAK_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=f"soak test: run `make soak` (--soak or {SOAK_ENV}=1)")
    for item in items:
        if "tests/reliability" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.integration)
        item.add_marker(pytest.mark.reliability)
        if "soak" in item.keywords and not soak_enabled(config):
            item.add_marker(skip)
