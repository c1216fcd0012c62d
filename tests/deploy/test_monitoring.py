"""The Grafana dashboard and the Prometheus rules: every alert unit-tested with `promtool test rules`
(firing where it should, quiet where it should not), every rule and panel query valid PromQL over
metrics the services really export, the PrometheusRule object the same rules, and both overlays
provisioning the dashboard and reporting NATS's real storage limit."""

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY

import services
from scripts.prometheus_rule import OUT, prometheus_rule

from .test_manifests import K8S, config_map_env, objects, rendered  # noqa: F401 (rendered: the overlays fixture)

MONITORING = K8S / "monitoring"
RULES = MONITORING / "ragmesh-rules.yaml"
RULE_TESTS = MONITORING / "ragmesh-rules.test.yaml"
DASHBOARD = MONITORING / "ragmesh-dashboard.json"
# What the dashboard must show: RED per service and method, ingest queue depth and oldest job age,
# DLQ growth, watermark lag per generation, embed batch fill and queue per lane, answer status mix and
# abstention rate, tokens and cost per tenant (and the NATS storage the alert watches).
REQUIRED_PANELS = (
    "Requests per second",
    "Errors per second",
    "Duration p99",
    "Ingest queue depth per tenant",
    "Oldest job age",
    "Dead-letter queue growth",
    "Watermark lag per generation",
    "Batch fill per lane",
    "Queue per lane",
    "Answer status mix",
    "Abstention rate",
    "Tokens per tenant and kind",
    "Cost per tenant (USD per hour)",
    "Storage used and limit",
)
REQUIRED_ALERTS = {
    "RagmeshSearchLatencyHigh",  # search p99 over its objective
    "RagmeshIngestLagging",
    "RagmeshDeadLetters",  # DLQ growth
    "RagmeshIndexConsumerStalled",
    "RagmeshAbstentionSpike",
    "RagmeshBudgetNearlySpent",
    "RagmeshNatsStorageNearLimit",
}
# Grafana's variables, as a Prometheus rule would have them.
VARIABLES = {"$__rate_interval": "5m", "$service": ".*", "$tenant": ".*"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("RAGMESH_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required here (RAGMESH_REQUIRE_PROMTOOL) but is not on PATH")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def panel_queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def exported_metrics() -> set[str]:
    """The name of every sample the services can export (each module that defines a metric loaded)."""
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("ragmesh_"):
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ("",))
            names |= {family.name + suffix for suffix in suffixes}
    return names


def metrics_in(query: str) -> set[str]:
    return set(re.findall(r"\bragmesh_[a-z0-9_]+\b", query))


def test_rules_are_valid_and_every_alert_passes_its_unit_tests():
    for command in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        result = subprocess.run([promtool(), *command], cwd=MONITORING, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet_and_carries_its_runbook():
    assert REQUIRED_ALERTS <= set(alerts())
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == set(alerts()), "an alert no test sees firing"
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == set(alerts()), "an alert no test sees quiet"
    for name, alert in alerts().items():
        assert alert["labels"]["severity"] in ("info", "warning", "critical"), name
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), name


def test_rules_and_panels_use_only_metrics_the_services_export():
    exported = exported_metrics()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for query in [rule["expr"] for rule in rules()] + panel_queries():
        assert metrics_in(query) <= exported, (query, metrics_in(query) - exported)
        assert set(re.findall(r"\bragmesh:[a-z0-9_:]+", query)) <= recorded, query


def test_every_panel_query_is_valid_promql(tmp_path):
    """promtool parses each query of the dashboard as a recording rule (variables given values)."""
    queries = []
    for query in panel_queries():
        for variable, value in VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, query
        queries.append(query)
    checked = tmp_path / "panels.yaml"
    records = [{"record": f"panel:query_{n}", "expr": q} for n, q in enumerate(queries)]
    checked.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": records}]}))
    result = subprocess.run([promtool(), "check", "rules", str(checked)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_shows_what_operators_need_and_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in panels()]
    for wanted in REQUIRED_PANELS:
        assert any(t.startswith(wanted) for t in titles), wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "service", "tenant"}
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24 and box["w"] > 0 and box["h"] > 0, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_the_prometheus_rule_object_holds_exactly_the_rules_file():
    assert OUT.read_text() == prometheus_rule(), "run: python scripts/prometheus_rule.py"
    document = yaml.safe_load(OUT.read_text())
    assert (document["apiVersion"], document["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert document["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_both_overlays_provision_the_dashboard(rendered):  # noqa: F811
    [dashboard] = [o for o in objects(rendered, "ConfigMap") if o["metadata"]["name"] == "ragmesh-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"] == {"ragmesh-dashboard.json": DASHBOARD.read_text()}


def nats_size(text: str) -> int:
    """A size in a NATS configuration: k/m/g/t in powers of 1000, kb/mb/gb/tb in powers of 1024."""
    number, unit = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", text.strip()).groups()
    unit = unit.lower()
    powers = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
    return int(number) * (1024 if unit.endswith("b") else 1000) ** powers[unit.rstrip("b")]


def test_the_reported_storage_limit_is_what_the_nats_servers_allow(rendered):  # noqa: F811
    [config] = [o for o in objects(rendered, "ConfigMap") if o["metadata"]["name"].startswith("nats-config")]
    limit = nats_size(re.search(r"max_file_store:\s*(\S+)", config["data"]["nats.conf"]).group(1))
    [nats] = [o for o in objects(rendered, "StatefulSet") if o["metadata"]["name"] == "nats"]
    servers = nats["spec"]["replicas"]
    assert int(config_map_env(rendered, "ragmesh-config")["RAGMESH_NATS_STORAGE_LIMIT_BYTES"]) == limit * servers
    assert nats_size("9G") == 9_000_000_000 and nats_size("1GB") == 1 << 30
