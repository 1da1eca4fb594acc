"""The deploy/ files: Docker cannot run on the development machines, so these tests stand in for it.

Every file parses (YAML, JSON, TOML); every flag and config key used in deploy/ (compose
commands, Kubernetes args, ConfigMap TOML, systemd ExecStart) exists in the `da` command line;
every `da_*` metric the alerts and the dashboard use is one our metrics classes export; and
`promtool` accepts the Prometheus configurations and rules (installed from Debian's `prometheus`
package when missing and we are root).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from da.cli.parser import build_parser
from da.cli.settings import load_config_file
from da.metrics import GroupMetrics, LightMetrics, ProducerMetrics, RpcMetrics, StorageMetrics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "da-sampling.json"
ROLES = ("producer", "storage-node", "light-client", "keygen", "devnet")
PROTOCOL_METRICS = (
    "da_blocks_produced_total",
    "da_block_encode_seconds",
    "da_storage_head_height",
    "da_light_last_confidence",
    "da_light_head_height",
    "da_grpc_requests_total",
    "da_grpc_request_seconds",
)
SHELL_OPERATORS = {";", "&&", "||", "|", ">", ">>", "<", "2>&1"}
APT_TIMEOUT_SECONDS = 900


def deploy_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in suffixes)


def yaml_documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects() -> Iterator[dict[str, Any]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from yaml_documents(path)


def role_parser(role: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action.choices[role]  # type: ignore[no-any-return]
    raise KeyError(role)


def role_flags(role: str) -> set[str]:
    return {o for a in role_parser(role)._actions for o in a.option_strings}  # noqa: SLF001


# --- every file parses --------------------------------------------------------------------


@pytest.mark.parametrize("path", deploy_files(".yml", ".yaml"), ids=lambda p: p.name)
def test_yaml_parses(path: Path) -> None:
    assert yaml_documents(path), f"{path} holds no YAML document"


@pytest.mark.parametrize("path", deploy_files(".json"), ids=lambda p: p.name)
def test_json_parses(path: Path) -> None:
    json.loads(path.read_text())


@pytest.mark.parametrize("path", deploy_files(".toml"), ids=lambda p: p.name)
def test_toml_parses(path: Path) -> None:
    tomllib.loads(path.read_text())


def test_the_expected_files_exist() -> None:
    expected = [
        "Dockerfile",
        "docker-compose.yml",
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "grafana/dashboards/da-sampling.json",
        "grafana/provisioning/datasources/prometheus.yml",
        "grafana/provisioning/dashboards/da.yml",
        "k8s/kustomization.yaml",
        "systemd/da-producer.service",
        "systemd/da-storage-node.service",
        "systemd/da-light-client.service",
    ]
    missing = [name for name in expected if not (DEPLOY / name).is_file()]
    assert not missing


# --- every flag and config key exists in the CLI ------------------------------------------


def da_invocations(argv: list[str]) -> list[tuple[str, list[str]]]:
    """(role, flags) of every `da <role> ...` in a container command: plain argv, or a shell
    script (`sh -c SCRIPT`) whose words, quoted strings included, are scanned for flags."""
    if len(argv) >= 2 and argv[0] in ("sh", "/bin/sh", "bash") and argv[1].startswith("-"):
        return _script_invocations(" ".join(argv[2:]))
    if argv and argv[0].endswith("da") and len(argv) > 1:
        return [(argv[1], [w.split("=")[0] for w in argv[2:] if w.startswith("--")])]
    return []


def _script_invocations(script: str) -> list[tuple[str, list[str]]]:
    words = _words(script.replace("$$", "$"))
    roles = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "da" and words[i + 1] in ROLES]
    if not roles:
        return []
    assert len(set(roles)) == 1, f"one role per script, got {roles}"
    return [(roles[0], [w.split("=")[0] for w in words if w.startswith("--")])]


def _words(text: str) -> list[str]:
    words: list[str] = []
    for word in shlex.split(text):
        word = word.rstrip(";")
        words.extend(_words(word) if " " in word else [word])
    return [w for w in words if w not in SHELL_OPERATORS]


def compose_invocations() -> list[tuple[str, str, list[str]]]:
    compose = yaml_documents(DEPLOY / "docker-compose.yml")[0]
    found = []
    for name, service in compose["services"].items():
        command = service.get("command") or []
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        found += [(f"compose {name}", role, flags) for role, flags in da_invocations(argv)]
    return found


def k8s_invocations() -> list[tuple[str, str, list[str]]]:
    found = []
    for obj in k8s_objects():
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            argv = [*container.get("command", []), *container.get("args", [])]
            where = f"k8s {obj['kind']}/{obj['metadata']['name']}"
            found += [(where, role, flags) for role, flags in da_invocations(argv)]
    return found


def systemd_invocations() -> list[tuple[str, str, list[str]]]:
    found = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(line.removeprefix("ExecStart=").lstrip("-@+!"))
                found += [(unit.name, role, flags) for role, flags in da_invocations(argv)]
    return found


ALL_INVOCATIONS = compose_invocations() + k8s_invocations() + systemd_invocations()


def test_every_role_is_deployed_everywhere() -> None:
    for source in ("compose", "k8s", "da-"):
        roles = {role for where, role, _ in ALL_INVOCATIONS if where.startswith(source)}
        assert {"producer", "storage-node", "light-client"} <= roles, (source, roles)


@pytest.mark.parametrize(
    ("where", "role", "flags"), ALL_INVOCATIONS, ids=[f"{w}:{r}" for w, r, _ in ALL_INVOCATIONS]
)
def test_command_flags_exist_in_the_cli(where: str, role: str, flags: list[str]) -> None:
    assert role in ROLES, f"{where}: unknown role {role!r}"
    unknown = sorted(set(flags) - role_flags(role))
    assert not unknown, f"{where}: `da {role}` has no flag(s) {unknown}"


def toml_configs() -> list[tuple[str, str, str]]:
    """(where, role, TOML text): deploy/config, deploy/systemd and the k8s ConfigMap."""
    found = []
    for path in sorted(DEPLOY.glob("*/*.toml")):
        found.append((str(path.relative_to(DEPLOY)), path.stem, path.read_text()))
    for obj in k8s_objects():
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "da-config":
            for key, text in obj["data"].items():
                found.append((f"k8s ConfigMap da-config/{key}", Path(key).stem, text))
    return found


TOML_CONFIGS = toml_configs()


@pytest.mark.parametrize(
    ("where", "role", "text"), TOML_CONFIGS, ids=[w for w, _, _ in TOML_CONFIGS]
)
def test_config_file_keys_exist_in_the_cli(
    where: str, role: str, text: str, tmp_path: Path
) -> None:
    """The CLI's own loader accepts the file: every key is a flag and every value has its type."""
    assert role in ("producer", "storage-node", "light-client"), f"{where}: role from file name"
    path = tmp_path / "config.toml"
    path.write_text(text)
    settings = load_config_file(path, role_parser(role))
    assert settings["data_dir"] and settings["listen"] and settings["chain_id"]


def test_k8s_configmap_holds_every_role() -> None:
    roles = {role for where, role, _ in TOML_CONFIGS if where.startswith("k8s")}
    assert roles == {"producer", "storage-node", "light-client"}


# --- Docker and compose --------------------------------------------------------------------


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), users
    for source in re.findall(r"^COPY\s+(?!--from)(\S+)", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"COPY {source}: not in the build context"


def test_compose_runs_the_whole_network() -> None:
    compose = yaml_documents(DEPLOY / "docker-compose.yml")[0]
    services = set(compose["services"])
    assert {
        "producer",
        "storage-1",
        "storage-2",
        "storage-3",
        "light-1",
        "light-2",
        "prometheus",
        "grafana",
    } <= services
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: mounts missing {source}"


def test_compose_quorum_fits_its_operators() -> None:
    producer = tomllib.loads((DEPLOY / "config" / "producer.toml").read_text())
    flags = next(f for w, r, f in ALL_INVOCATIONS if w == "compose producer")
    assert 1 <= producer["quorum"] <= flags.count("--operator") == 3


# --- Kubernetes ----------------------------------------------------------------------------


def test_k8s_kinds_and_kustomization() -> None:
    kinds = {obj["kind"] for obj in k8s_objects()}
    assert {"ConfigMap", "Secret", "Service", "StatefulSet", "Deployment"} <= kinds
    resources = yaml_documents(K8S / "kustomization.yaml")[0]["resources"]
    assert sorted(resources) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_k8s_producer_group_flags_exist_and_replicas_spread() -> None:
    group = [
        o
        for p in sorted((K8S / "group").glob("*.yaml"))
        if p.name != "kustomization.yaml"
        for o in yaml_documents(p)
    ]
    resources = yaml_documents(K8S / "group" / "kustomization.yaml")[0]["resources"]
    assert sorted(resources) == sorted(
        p.name for p in (K8S / "group").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    invocations = []
    for obj in group:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            argv = [*container.get("command", []), *container.get("args", [])]
            invocations += da_invocations(argv)
            assert spec["affinity"]["podAntiAffinity"]
    assert [role for role, _ in invocations] == ["producer"]
    for role, flags in invocations:
        assert {"--etcd", "--replica", "--lease-seconds"} <= set(flags)
        assert not set(flags) - role_flags(role)
    sets = {o["metadata"]["name"]: o for o in group if o["kind"] == "StatefulSet"}
    assert sets["da-producer-group"]["spec"]["replicas"] == sets["da-etcd"]["spec"]["replicas"] == 3


def test_compose_group_runs_three_replicas_beside_etcd() -> None:
    compose = yaml_documents(DEPLOY / "docker-compose.group.yml")[0]
    found: list[tuple[str, list[str]]] = []
    for service in compose["services"].values():
        command = service.get("command") or []
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        found += da_invocations(argv)
    replicas = [flags for role, flags in found if role == "producer"]
    assert len(replicas) == 3 and all(flags.count("--replica") == 2 for flags in replicas)
    assert sum(1 for name in compose["services"] if name.startswith("etcd-")) == 3
    for role, flags in found:
        assert not set(flags) - role_flags(role), (role, flags)


def test_k8s_storage_nodes_are_a_spread_statefulset() -> None:
    storage = next(
        o
        for o in k8s_objects()
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "da-storage"
    )
    assert storage["spec"]["volumeClaimTemplates"]
    affinity = storage["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    services = [o for o in k8s_objects() if o["kind"] == "Service"]
    assert any(
        s["metadata"]["name"] == storage["spec"]["serviceName"]
        and s["spec"].get("clusterIP") == "None"
        for s in services
    )


def test_k8s_alert_rules_match_deploy_prometheus() -> None:
    config_map = next(o for o in k8s_objects() if o["metadata"]["name"] == "da-prometheus")
    assert config_map["data"]["alerts.yml"] == (PROMETHEUS / "alerts.yml").read_text()


# --- metric names --------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    registry = CollectorRegistry()
    ProducerMetrics(registry)
    GroupMetrics(registry)
    StorageMetrics(registry)
    LightMetrics(registry)
    RpcMetrics(registry, methods=["/da.v1.ShareService/GetSamples"])
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def alert_expressions(path: Path = PROMETHEUS / "alerts.yml") -> list[str]:
    rules = yaml_documents(path)[0]
    return [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    used = set()
    for expr in dashboard_expressions() + alert_expressions():
        used.update(re.findall(r"\bda_[a-z_]+", expr))
    assert not used - exported, f"not exported by da.metrics: {sorted(used - exported)}"


def test_design_metrics_are_on_the_dashboard_and_in_alerts() -> None:
    text = " ".join(dashboard_expressions())
    assert all(name in text for name in PROTOCOL_METRICS)
    alerts = " ".join(alert_expressions())
    for name in ("da_blocks_produced_total", "da_storage_head_height", "da_light_last_confidence"):
        assert name in alerts


# --- promtool ------------------------------------------------------------------------------


def ensure_prometheus_binary(name: str) -> str:
    """Path of `promtool` or `prometheus`; installs Debian's `prometheus` package when it is
    missing and we are root; skips the test with the reason otherwise."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{name} is missing; install Debian's `prometheus` package (needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]
    done = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_SECONDS)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(
            ["apt-get", "update"], env=env, capture_output=True, timeout=APT_TIMEOUT_SECONDS
        )
        done = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_SECONDS)
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        pytest.skip(f"apt-get install prometheus failed: {done.stderr.decode()[-500:]}")
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    return ensure_prometheus_binary("promtool")


def run_promtool(promtool: str, *args: str) -> None:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def test_promtool_accepts_the_compose_config(promtool: str) -> None:
    run_promtool(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    run_promtool(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))


def test_promtool_accepts_the_k8s_config(promtool: str, tmp_path: Path) -> None:
    """The ConfigMap's prometheus.yml, with its rules next to it. Debian builds Prometheus
    without Kubernetes discovery, so if promtool does not know `kubernetes_sd_configs` the
    discovery is swapped for a static target and everything else (relabelling) is checked."""
    config_map = next(o for o in k8s_objects() if o["metadata"]["name"] == "da-prometheus")
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    config["rule_files"] = ["alerts.yml"]
    (tmp_path / "alerts.yml").write_text(config_map["data"]["alerts.yml"])
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    if "kubernetes_sd_configs not found" in done.stdout + done.stderr:
        for job in config["scrape_configs"]:
            assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
            job["static_configs"] = [{"targets": ["pod.example:9400"]}]
        path.write_text(yaml.safe_dump(config))
        run_promtool(promtool, "check", "config", str(path))
    else:
        assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_dashboard_queries(promtool: str, tmp_path: Path) -> None:
    """Every dashboard query parses as PromQL (as a recording rule, Grafana's interval fixed)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool(promtool, "check", "rules", str(path))
