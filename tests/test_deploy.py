"""deploy/: Kubernetes manifests against the Kubernetes schemas, compose structure,
Prometheus rules with promtool, the Grafana dashboard's queries, and that every
metric they name is one the code exports."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from sluicegate.core import metrics
from sluicegate.core.config_loader import load_settings
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose"
PROM = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "sluicegate.json"
K8S_VERSIONS = ["1.29.0", "1.33.0"]
ENV = {
    "DATABASE_URL": "postgresql+psycopg://sluicegate:pw@postgres:5432/sluicegate",
    "SLUICEGATE_DATA_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
}


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in k8s_docs() if d["kind"] == kind}


def promtool() -> str:
    """The promtool binary; under CI its absence is a failure, not a skip."""
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("promtool is missing: .ci/run installs Debian's `prometheus` package")
    pytest.skip("promtool not installed (apt-get install prometheus); CI=true makes this fail")


# ---- Kubernetes ---------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schema(version: str) -> None:
    docs = k8s_docs()
    assert len(docs) >= 20
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_the_validator_catches_mistakes() -> None:
    api = copy.deepcopy(by_kind("Deployment")["sluicegate-api"])
    api["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSIONS[-1], strict=True)
    api = copy.deepcopy(by_kind("Deployment")["sluicegate-api"])
    api["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSIONS[-1], strict=True)


def test_workloads_probes_and_gpu() -> None:
    deployments = by_kind("Deployment")
    assert {"sluicegate-api", "sluicegate-worker", "sluicegate-relay", "triton"} <= set(deployments)
    api = deployments["sluicegate-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["args"] == ["serve"]
    worker = deployments["sluicegate-worker"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/run/prometheus"
    assert env["HTTPS_PROXY"].startswith("http://cloud-egress:")
    triton = deployments["triton"]["spec"]["template"]["spec"]["containers"][0]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    for name in ("sluicegate-api", "sluicegate-worker", "sluicegate-relay"):
        spec = deployments[name]["spec"]["template"]["spec"]
        refs = [s["secretRef"]["name"] for s in spec["containers"][0]["envFrom"]]
        assert refs == ["sluicegate-secrets"], name
        assert {v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v} == {
            "sluicegate-config"
        }
    assert "sluicegate-secrets" in by_kind("Secret")


def test_autoscalers_and_disruption_budgets() -> None:
    hpas = by_kind("HorizontalPodAutoscaler")
    api_metrics = {m["type"]: m for m in hpas["sluicegate-api"]["spec"]["metrics"]}
    assert api_metrics["Resource"]["resource"]["name"] == "cpu"
    assert "Pods" in api_metrics
    [worker_metric] = hpas["sluicegate-worker"]["spec"]["metrics"]
    assert worker_metric["type"] == "External"
    assert worker_metric["external"]["metric"]["name"] == "sluicegate_queue_depth"
    pdbs = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in by_kind("PodDisruptionBudget").values()
    }
    assert {"sluicegate-api", "sluicegate-worker", "sluicegate-relay", "triton"} <= pdbs


def _public_egress(policy: dict[str, Any]) -> bool:
    for rule in policy["spec"].get("egress", []):
        if not rule.get("to"):
            return True  # no destination = anywhere
        for peer in rule["to"]:
            cidr = peer.get("ipBlock", {}).get("cidr")
            if cidr in ("0.0.0.0/0", "::/0"):
                return True
    return False


def test_only_the_cloud_egress_pods_reach_the_internet() -> None:
    policies = by_kind("NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    open_to_internet = {name for name, p in policies.items() if _public_egress(p)}
    assert open_to_internet == {"cloud-egress"}
    egress = policies["cloud-egress"]["spec"]
    assert egress["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "cloud-egress"}
    [rule] = egress["egress"]
    assert [p["port"] for p in rule["ports"]] == [443]
    assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]
    squid = by_kind("ConfigMap")["cloud-egress-config"]["data"]["squid.conf"]
    assert "http_access deny all" in squid and "api.deepseek.com" in squid


def test_configmap_carries_the_same_yaml_as_compose_and_it_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = by_kind("ConfigMap")["sluicegate-config"]["data"]["sluicegate.yaml"]
    assert text == (COMPOSE / "sluicegate.yaml").read_text()
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(COMPOSE / "sluicegate.yaml")
    assert settings.metrics.exporter_port == 9101
    assert "/metrics" in settings.security.public_paths
    assert not settings.relay.embedded and not settings.worker.embedded
    assert {b.zone for b in settings.inference.backends.values()} == {"onprem"}


# ---- docker compose -----------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return data


def test_compose_services_and_healthchecks() -> None:
    services = compose()["services"]
    assert {
        "api",
        "worker",
        "relay",
        "postgres",
        "redis",
        "triton",
        "prometheus",
        "grafana",
        "migrate",
    } <= set(services)
    for name, service in services.items():
        if name != "migrate":
            assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["relay"]["command"] == ["relay"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    [gpu] = services["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["capabilities"] == ["gpu"] and gpu["driver"] == "nvidia"
    assert services["worker"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/prometheus"
    for name in ("api", "worker", "relay", "migrate"):
        mounts = services[name]["volumes"]
        assert "./sluicegate.yaml:/etc/sluicegate/sluicegate.yaml:ro" in mounts, name


def compose_errors(data: dict[str, Any]) -> list[str]:
    """Errors against the Compose Specification's schema (what Compose v2 checks)."""
    schema = json.loads((REPO / "tests" / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]


def test_compose_file_validates_against_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "api", "restrt"), "always"),  # misspelt key
        (("services", "worker", "depends_on"), "postgres"),  # wrong type
        (("services", "api", "healthcheck", "interval"), ["10s"]),
    ],
)
def test_the_compose_schema_catches_mistakes(path: tuple[str, ...], value: Any) -> None:
    data = copy.deepcopy(compose())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert compose_errors(data), f"{'.'.join(path)} = {value!r} was accepted"


def test_compose_mounts_and_build_files_exist() -> None:
    data = compose()
    for name, service in data["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name}: {source} missing"
    build = data["x-sluicegate"]["build"]
    context = (COMPOSE / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    assert dockerfile.exists()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), source


def test_every_compose_variable_is_in_the_env_example() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (COMPOSE / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert used - documented == set()


# ---- Prometheus and Grafana ---------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    out = subprocess.run(
        [promtool(), "check", "rules", str(PROM / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_the_alerts() -> None:
    out = subprocess.run(
        [promtool(), "test", "rules", str(PROM / "alerts_test.yml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set()


def test_promtool_checks_the_scrape_config(tmp_path: Path) -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"sluicegate-api", "sluicegate-worker", "sluicegate-relay", "triton"} <= jobs
    triton = next(j for j in config["scrape_configs"] if j["job_name"] == "triton")
    assert triton["static_configs"][0]["targets"] == ["triton:8002"]


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 25
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": e.replace("$__rate_interval", "5m")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "q.yml").write_text(yaml.safe_dump(rules))
    out = subprocess.run(
        [promtool(), "check", "rules", str(tmp_path / "q.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_covers_the_seed_signals() -> None:
    text = " ".join(dashboard_exprs())
    for signal in (
        "sluicegate_http_request_duration_seconds_bucket",  # P99
        "offset 1h",  # QPS against the previous hour
        "nv_gpu_memory_used_bytes",
        "node_cpu_seconds_total",
        'status="succeeded"',  # success rate
        'status=~"5.."',  # error rate
        "sluicegate_queue_oldest_age_seconds",
        "sluicegate_breaker_state",
        "sluicegate_guard_blocks_total",
        "sluicegate_inference_cost_total",
        "nv_inference_request_success",
        "nv_gpu_utilization",
    ):
        assert signal in text, signal


def _exported_names() -> set[str]:
    """Sample names of every family, after one call of each library function."""
    metrics.observe_request("fhir", "/fhir/r4/Bundle", "POST", 202, 0.01)
    metrics.job_accepted("fhir")
    metrics.job_finished("radiology_report", "onprem", "succeeded", 1.0)
    metrics.job_error("radiology_report", "backend_timeout")
    metrics.inference_call("gpu-triton", "onprem", "ok", 0.5, 10, 10, 0.01)
    metrics.breaker_state("gpu-triton", "closed")
    metrics.guard_blocked("name")
    metrics.cache_lookup(True)
    metrics.webhook_delivery("webhook", "delivered")
    metrics.audit_verified(True)
    names: set[str] = set()
    for family in (
        metrics.HTTP_REQUESTS,
        metrics.HTTP_LATENCY,
        metrics.JOBS_ACCEPTED,
        metrics.JOBS_FINISHED,
        metrics.JOB_LATENCY,
        metrics.JOB_ERRORS,
        metrics.INFERENCE_CALLS,
        metrics.INFERENCE_LATENCY,
        metrics.INFERENCE_TOKENS,
        metrics.INFERENCE_COST,
        metrics.BREAKER,
        metrics.GUARD_BLOCKS,
        metrics.CACHE_LOOKUPS,
        metrics.DELIVERIES,
        metrics.AUDIT_VERIFICATIONS,
    ):
        for metric in family.collect():
            names |= {s.name for s in metric.samples} | {metric.name}
    return names


def test_every_sluicegate_metric_named_in_deploy_is_exported(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from sluicegate.core import db

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db.upgrade(url)
    engine = create_engine(url)
    scraped = {s.name for m in metrics.DatabaseCollector(engine).collect() for s in m.samples}
    engine.dispose()
    known = _exported_names() | scraped
    texts = [
        (PROM / "alerts.yml").read_text(),
        DASHBOARD.read_text(),
        (K8S / "hpa.yaml").read_text(),
    ]
    referenced = {n for t in texts for n in re.findall(r"\bsluicegate_[a-z_]+", t)}
    referenced -= {"sluicegate_http_requests_per_second"}  # prometheus-adapter's name
    assert referenced - known == set()


def test_missing_promtool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="promtool is missing"):
        promtool()


def test_every_runbook_link_has_its_section() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    links = {
        r["annotations"]["runbook"].split("#", 1)[1]
        for g in rules["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert links - anchors == set()


def test_triton_serves_the_model_the_config_asks_for(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(COMPOSE / "sluicegate.yaml")
    [model] = {b.model for b in settings.inference.backends.values()}
    assert (DEPLOY / "triton" / "model_repository" / model / "config.pbtxt").exists()
    triton = by_kind("Deployment")["triton"]["spec"]["template"]["spec"]["containers"][0]
    assert f"--load-model={model}" in triton["args"]
    compose_args = compose()["services"]["triton"]["command"]
    assert f"--load-model=${{TRITON_MODEL:-{model}}}" in compose_args
