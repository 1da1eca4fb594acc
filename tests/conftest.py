"""Fixtures shared by the suites that start real processes (tests/integration, tests/reliability):
a `cluster` factory of `da` processes, stopped afterwards; their logs are printed on failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.etcd_cluster import ETCD, EtcdCluster
from tests.integration.harness import Cluster


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    yield c
    c.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(c.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def etcd_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], EtcdCluster]]:
    """A factory of real 3-member etcd clusters on loopback, all stopped at the end of the
    session. Tests that only need etcd share one (`shared_etcd`) and keep apart by chain id;
    tests that kill members make their own."""
    if ETCD is None:
        pytest.skip(
            "etcd is not on PATH: install the Debian package etcd-server (scripts/install-etcd.sh)"
        )
    made: list[EtcdCluster] = []

    def make() -> EtcdCluster:
        made.append(EtcdCluster(tmp_path_factory.mktemp("etcd")))
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()


@pytest.fixture(scope="session")
def shared_etcd(etcd_clusters: Callable[[], EtcdCluster]) -> EtcdCluster:
    """One etcd cluster for every test that does not kill its members."""
    return etcd_clusters()
