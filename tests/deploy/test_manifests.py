"""Every Kubernetes overlay renders (kustomize via `kubectl kustomize`), validates against the
Kubernetes JSON schemas with unknown fields rejected, and passes the deployment policies; the
environment and ports agree with the services' settings classes and the image."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers import nats_binary

from scripts.nats_auth import config as nats_auth_config
from scripts.nats_auth import password_variable
from services.common import config
from services.common.nats_access import GRANTS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.32"
SETTINGS = {
    "gateway": config.GatewaySettings,
    "ingest": config.IngestSettings,
    "embed": config.EmbedSettings,
    "retrieve": config.RetrieveSettings,
    "generate": config.GenerateSettings,
}
STATELESS = ("gateway", "ingest", "embed", "generate")
WORKLOADS = ("Deployment", "StatefulSet")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("RAGMESH_REQUIRE_KUBECTL"):
            pytest.fail("kubectl is required here (RAGMESH_REQUIRE_KUBECTL) but is not on PATH")
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    return path


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / request.param)], check=True, capture_output=True, text=True
    ).stdout
    return request.param, [doc for doc in yaml.safe_load_all(out) if doc]


def objects(rendered, *kinds: str) -> list[dict]:
    return [o for o in rendered[1] if o["kind"] in kinds]


def pod_specs(rendered) -> list[tuple[str, dict]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objects(rendered, *WORKLOADS)]


def ragmesh_containers(rendered) -> list[tuple[str, dict, dict]]:
    """(service, container, pod spec) of every ragmesh service container."""
    found = []
    for _, spec in pod_specs(rendered):
        for container in spec["containers"]:
            if container["image"].startswith("ghcr.io/ragmesh/ragmesh:"):
                found.append((container["args"][0].removeprefix("services."), container, spec))
    return found


def config_map_env(rendered, name_prefix: str) -> dict[str, str]:
    [cm] = [o for o in objects(rendered, "ConfigMap") if o["metadata"]["name"].startswith(name_prefix)]
    return cm["data"]


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    return dict(re.findall(r"(RAGMESH_[A-Z_]+)=(\S+)", text))


def test_every_object_is_valid_with_no_unknown_fields(rendered):
    for obj in rendered[1]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_service_of_ragmesh_is_deployed(rendered):
    assert {service for service, _, _ in ragmesh_containers(rendered)} == set(SETTINGS)


def test_every_container_is_probed_limited_and_locked_down(rendered):
    for name, spec in pod_specs(rendered):
        pod_security = spec.get("securityContext", {})
        assert pod_security.get("runAsNonRoot") is True, name
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("serviceAccountName") == name, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            security = container.get("securityContext", {})
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"].get("limits", {})), where
            assert {"cpu", "memory"} <= set(container["resources"].get("requests", {})), where
        for container in spec["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, name


def test_service_accounts_exist(rendered):
    accounts = {o["metadata"]["name"] for o in objects(rendered, "ServiceAccount")}
    assert {spec["serviceAccountName"] for _, spec in pod_specs(rendered)} <= accounts


def test_every_image_is_pinned(rendered):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for _, spec in pod_specs(rendered):
        for container in spec.get("initContainers", []) + spec["containers"]:
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and "/" not in tag, image
            if name == "ghcr.io/ragmesh/ragmesh":
                assert tag == version, image


def test_only_the_gateway_is_reachable_from_outside(rendered):
    for service in objects(rendered, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
    policies = objects(rendered, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"] for p in policies)
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule:  # open to anyone: only the gateway's pods
                selected = policy["spec"]["podSelector"].get("matchLabels", {})
                assert selected.get("app.kubernetes.io/name") == "gateway", policy["metadata"]["name"]


def test_internal_services_accept_only_their_callers(rendered):
    callers = {}
    for policy in objects(rendered, "NetworkPolicy"):
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if target and name:
                    callers.setdefault(target, set()).add(name)
    assert callers["embed"] == {"ingest", "retrieve", "retrieve-indexer", "generate"}
    assert callers["ingest"] == callers["retrieve"] == callers["generate"] == {"gateway"}
    assert callers["nats"] == {"gateway", "ingest", "retrieve", "retrieve-indexer", "nats"}


def settings_names(cls) -> set[str]:
    return {f"RAGMESH_{field.upper()}" for field in cls.model_fields}


def test_environment_names_are_real_settings(rendered):
    shared = {n for n in config_map_env(rendered, "ragmesh-config") if n.startswith("RAGMESH_")}
    everyone = set().union(*(settings_names(cls) for cls in SETTINGS.values()))
    assert shared <= everyone, shared - everyone  # shared names: read by some service
    for service, container, _ in ragmesh_containers(rendered):
        own = {e["name"] for e in container.get("env", [])} | set(dockerfile_env())
        own = {n for n in own if n.startswith("RAGMESH_")}
        assert own <= settings_names(SETTINGS[service]), (service, own - settings_names(SETTINGS[service]))


def test_ports_probes_and_addresses_agree(rendered):
    image = dockerfile_env()
    grpc, metrics = int(image["RAGMESH_GRPC_PORT"]), int(image["RAGMESH_METRICS_PORT"])
    services = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in objects(rendered, "Service")}
    for service, container, _ in ragmesh_containers(rendered):
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": grpc, "metrics": metrics}, service
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in container:
                assert container[probe]["grpc"]["port"] == grpc, (service, probe)
        assert services[service] == {grpc}, service
    shared = config_map_env(rendered, "ragmesh-config")
    for name, value in shared.items():
        if name.endswith("_ADDR"):
            host, port = value.split(":")
            assert int(port) in services[host], (name, value)
    endpoint = re.match(r"http://([\w-]+):(\d+)", shared["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert int(endpoint.group(2)) in services[endpoint.group(1)]
    for url in shared["RAGMESH_NATS_URL"].split(","):
        host = url.removeprefix("nats://").split(":")[0].split(".")
        assert host[-1] in services and 4222 in services[host[-1]], url


def test_metrics_are_scraped(rendered):
    metrics = int(dockerfile_env()["RAGMESH_METRICS_PORT"])
    for o in objects(rendered, *WORKLOADS):
        if any(c["image"].startswith("ghcr.io/ragmesh/") for c in o["spec"]["template"]["spec"]["containers"]):
            annotations = o["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true"
            assert int(annotations["prometheus.io/port"]) == metrics


def test_graceful_termination_covers_the_drain(rendered):
    drain = float(config_map_env(rendered, "ragmesh-config")["RAGMESH_DRAIN_SECONDS"])
    for service, container, spec in ragmesh_containers(rendered):
        pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain, service


def test_stateless_services_have_disruption_budgets_and_autoscalers(rendered):
    overlay, _ = rendered
    stateless = set(STATELESS) | ({"retrieve"} if overlay == "cluster" else set())
    budgets = {
        o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for o in objects(rendered, "PodDisruptionBudget")
    }
    scalers = {o["spec"]["scaleTargetRef"]["name"] for o in objects(rendered, "HorizontalPodAutoscaler")}
    assert stateless <= budgets and stateless <= scalers
    kinds = {o["metadata"]["name"]: o["kind"] for o in objects(rendered, *WORKLOADS)}
    assert kinds["retrieve"] == ("Deployment" if overlay == "cluster" else "StatefulSet")


def test_cluster_overlay_runs_the_cluster_engines(rendered):
    overlay, _ = rendered
    shared = config_map_env(rendered, "ragmesh-config")
    workloads = {o["metadata"]["name"]: o for o in objects(rendered, *WORKLOADS)}
    if overlay == "cluster":
        assert shared["RAGMESH_DENSE_URL"] and shared["RAGMESH_LEXICAL_URL"]
        # Searchers never write the shared engines; indexers contend for the one writer's lease.
        roles = {
            name: {
                e["name"]: e.get("value") for e in workloads[name]["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            for name in ("retrieve", "retrieve-indexer")
        }
        assert roles["retrieve"]["RAGMESH_INDEX_WRITER"] == "false"
        assert roles["retrieve-indexer"]["RAGMESH_INDEX_WRITER"] == "true"
        assert workloads["retrieve-indexer"]["spec"]["replicas"] == 2
        assert workloads["nats"]["spec"]["replicas"] == 3 and shared["RAGMESH_NATS_REPLICAS"] == "3"
        assert {"qdrant", "opensearch", "otel-collector", "jaeger", "reranker"} <= set(workloads)
        # retrieve's reranking stage calls the TEI reranker, on the port its Service opens.
        services = {s["metadata"]["name"]: s for s in objects(rendered, "Service")}
        host, port = shared["RAGMESH_RERANK_URL"].removeprefix("http://").split(":")
        assert shared["RAGMESH_RERANK_API"] == "tei" and int(port) in {
            p["port"] for p in services[host]["spec"]["ports"]
        }
        assert workloads["nats"]["spec"]["volumeClaimTemplates"]
    else:
        assert "RAGMESH_DENSE_URL" not in shared and workloads["nats"]["spec"]["replicas"] == 1
        assert workloads["retrieve"]["spec"]["volumeClaimTemplates"]
        # Each embedded replica applies the stream through a consumer of its own.
        env = {e["name"]: e for e in workloads["retrieve"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["RAGMESH_CONSUMER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def nats_container(rendered) -> dict:
    [nats] = [o for o in objects(rendered, *WORKLOADS) if o["metadata"]["name"] == "nats"]
    [container] = nats["spec"]["template"]["spec"]["containers"]
    return container


def secret_env(container: dict) -> dict[str, tuple[str, str]]:
    """name -> (Secret, key) of every variable a container takes from a Secret."""
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_nats_users_and_permissions_are_the_generated_ones(rendered):
    [auth] = [o for o in objects(rendered, "ConfigMap") if o["metadata"]["name"].startswith("nats-auth")]
    assert auth["data"]["auth.conf"] == nats_auth_config()


def test_every_nats_user_has_its_password_from_the_secret(rendered):
    for service, container, _ in ragmesh_containers(rendered):
        wanted = {"RAGMESH_NATS_PASSWORD": ("ragmesh-nats", service)} if service in GRANTS else {}
        assert {k: v for k, v in secret_env(container).items() if "NATS" in k} == wanted, service
    users = {password_variable(user): ("ragmesh-nats", user) for user in GRANTS}
    routes = {"NATS_ROUTE_PASSWORD": ("ragmesh-nats", "route")} if rendered[0] == "cluster" else {}
    assert secret_env(nats_container(rendered)) == {**users, **routes}


def test_nats_requires_the_users_and_keeps_monitoring_inside_the_pod(rendered, tmp_path):
    """The rendered configuration, checked by the real nats-server (`-t`)."""
    conf = config_map_env(rendered, "nats-config")["nats.conf"]
    assert 'include "../nats-auth/auth.conf"' in conf and 'http: "127.0.0.1:8222"' in conf
    clients = conf.split("cluster {")[0]  # the routes' own authorization is the cluster block's
    assert "http_port" not in conf and "authorization" not in clients.replace("auth.conf", "")
    container = nats_container(rendered)
    assert {p["containerPort"] for p in container["ports"]} <= {4222, 6222}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][-1].startswith("http://127.0.0.1:8222/healthz")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}  # laid out below as in the pod
    assert mounts == {"/etc/nats": "config", "/etc/nats-auth": "auth", "/data": "data"}
    (tmp_path / "nats").mkdir()
    (tmp_path / "nats-auth").mkdir()
    (tmp_path / "nats-auth" / "auth.conf").write_text(config_map_env(rendered, "nats-auth")["auth.conf"])
    (tmp_path / "nats" / "nats.conf").write_text(conf.replace("/data", str(tmp_path / "data")))
    env = {**os.environ, "POD_NAME": "nats-0", **{password_variable(u): f"secret-{u}" for u in GRANTS}}
    env |= {"NATS_ROUTE_PASSWORD": "r", **{f"NATS_ROUTE_{i}": f"nats://route:r@nats-{i}:6222" for i in range(3)}}
    checked = subprocess.run(
        [nats_binary(), "-c", str(tmp_path / "nats" / "nats.conf"), "-t"], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
