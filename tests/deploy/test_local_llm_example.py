"""The Kubernetes example with a local LLM (deploy/k8s/examples/local-llm) renders, validates against
the schemas, passes the same container policies as the overlays, and wires generate to the LLM, which
only generate (and metrics scraping) may reach."""

import subprocess

import kubernetes_validate
import pytest
import yaml

from services.common import config
from services.llm.model import DEFAULT_MODEL, MODELS

from .test_manifests import K8S, KUBERNETES_VERSION, kubectl, test_every_container_is_probed_limited_and_locked_down

EXAMPLE = K8S / "examples" / "local-llm"


@pytest.fixture(scope="module")
def rendered() -> tuple[str, list[dict]]:
    out = subprocess.run([kubectl(), "kustomize", str(EXAMPLE)], check=True, capture_output=True, text=True).stdout
    return "local-llm", [doc for doc in yaml.safe_load_all(out) if doc]


def find(rendered, kind: str, name: str) -> dict:
    [obj] = [o for o in rendered[1] if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_every_object_is_valid_and_every_container_locked_down(rendered):
    for obj in rendered[1]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    test_every_container_is_probed_limited_and_locked_down(rendered)


def test_the_llm_fetches_its_verified_model_then_serves_it_with_health_probes(rendered):
    pod = find(rendered, "Deployment", "llm")["spec"]["template"]["spec"]
    [fetch], [llm] = pod["initContainers"], pod["containers"]
    assert fetch["image"] == llm["image"] and llm["image"].startswith("ghcr.io/ragmesh/ragmesh:")
    assert fetch["args"][:1] == ["services.llm.fetch"] and llm["args"] == ["services.llm"]
    models = fetch["args"][fetch["args"].index("--dest") + 1]
    assert {m["mountPath"]: m["name"] for m in fetch["volumeMounts"]}[models] == "models"
    assert {m["mountPath"]: m["name"] for m in llm["volumeMounts"]}[models] == "models"
    env = env_of(llm)
    assert set(env) <= {f"RAGMESH_{name.upper()}" for name in config.LlmServerSettings.model_fields}
    assert env["RAGMESH_LLM_MODEL_PATH"] == f"{models}/{MODELS[DEFAULT_MODEL].file_name}"
    port = int(env["RAGMESH_LLM_PORT"])
    assert llm["ports"] == [{"name": "http", "containerPort": port}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert llm[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe


def test_generate_answers_through_the_llm_service(rendered):
    service = find(rendered, "Service", "llm")
    [port] = service["spec"]["ports"]
    [generate] = find(rendered, "Deployment", "generate")["spec"]["template"]["spec"]["containers"]
    env = env_of(generate)
    assert env["RAGMESH_PROVIDER"] == "openai"
    assert env["RAGMESH_LLM_URL"] == f"http://llm:{port['port']}/v1"
    assert env["RAGMESH_LLM_MODEL"] == DEFAULT_MODEL
    ragmesh = {name for name in env if name.startswith("RAGMESH_")}
    assert ragmesh <= {f"RAGMESH_{name.upper()}" for name in config.GenerateSettings.model_fields}
    [gateway] = find(rendered, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    assert '"Ask": 120' in env_of(gateway)["RAGMESH_METHOD_DEADLINES"]


def test_only_generate_and_metrics_scraping_reach_the_llm(rendered):
    policy = find(rendered, "NetworkPolicy", "llm-from-generate")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "llm"}
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert sources == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "generate"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
