"""The cluster overlay's NATS servers, run for real from the rendered manifests (configuration,
generated users, environment as the kubelet composes it; ports moved to free ones on this host):
the three form a JetStream cluster over authenticated routes, and a server that knows the route
addresses but not the route password never joins."""

import asyncio
import json
import re
import subprocess
import time
import urllib.request

import nats
import nats.js.errors
import pytest
import yaml
from helpers import free_port_block, nats_binary
from nats.js.api import StreamConfig

from scripts.nats_auth import password_variable
from services.common import natsio
from services.common.nats_access import GRANTS

from .test_manifests import K8S, config_map_env, kubectl, nats_container

ROUTE_PASSWORD = "route-Zq81_x-secret"
PASSWORDS = {**{password_variable(u): f"secret-{u}" for u in GRANTS}, "NATS_ROUTE_PASSWORD": ROUTE_PASSWORD}
SECRETS = {"ragmesh-nats": {**{u: f"secret-{u}" for u in GRANTS}, "route": ROUTE_PASSWORD}}


@pytest.fixture(scope="module")
def rendered():
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / "cluster")], check=True, capture_output=True, text=True
    ).stdout
    return "cluster", [doc for doc in yaml.safe_load_all(out) if doc]


def container_env(container: dict, pod_name: str, secrets: dict) -> dict[str, str]:
    """The container's environment as the kubelet makes it: secrets and the pod's name filled in,
    `$(NAME)` replaced by a variable defined before it."""
    env: dict[str, str] = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(0)[2:-1], m.group(0)), e["value"])
        elif "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
        elif e["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = pod_name
    return env


class Server:
    def __init__(self, root, name: str, conf: str, auth: str, env: dict[str, str], ports: dict[str, int]) -> None:
        self.name, self.ports = name, ports
        folder = root / name
        (folder / "nats").mkdir(parents=True)
        (folder / "nats-auth").mkdir()
        (folder / "nats-auth" / "auth.conf").write_text(auth)
        conf = conf.replace("/data", str(folder / "data"))
        conf = conf.replace("port: 4222", f"port: {ports['client']}\nhost: 127.0.0.1")
        conf = conf.replace("port: 6222", f"port: {ports['cluster']}\n      host: 127.0.0.1")
        conf = conf.replace("127.0.0.1:8222", f"127.0.0.1:{ports['http']}")
        (folder / "nats" / "nats.conf").write_text(conf + f'\nlog_file: "{folder / "nats.log"}"\n')
        self.log = folder / "nats.log"
        self.proc = subprocess.Popen(
            [nats_binary(), "-c", str(folder / "nats" / "nats.conf")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def routez(self) -> dict:
        url = f"http://127.0.0.1:{self.ports['http']}/routez"
        with urllib.request.urlopen(url, timeout=2) as reply:
            return json.loads(reply.read())

    def routed_to(self) -> set[str]:
        try:
            return {r.get("remote_name", "") for r in self.routez().get("routes", [])}
        except OSError:
            return set()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def text(path) -> str:
    return path.read_text().lower() if path.exists() else ""


def until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(rendered, tmp_path_factory):
    root = tmp_path_factory.mktemp("nats-cluster")
    conf = config_map_env(rendered, "nats-config")["nats.conf"]
    auth = config_map_env(rendered, "nats-auth")["auth.conf"]
    container = nats_container(rendered)
    base = free_port_block(12)
    ports = [{"client": base + 3 * i, "cluster": base + 3 * i + 1, "http": base + 3 * i + 2} for i in range(4)]

    def local(env: dict[str, str]) -> dict[str, str]:
        """Each pod's address is its own host here: route addresses moved to this host's ports."""
        for i in range(3):
            for k, v in env.items():
                env[k] = v.replace(f"nats-{i}.nats-cluster:6222", f"127.0.0.1:{ports[i]['cluster']}")
        return env

    servers = []
    try:
        for i in range(3):
            env = local(container_env(container, f"nats-{i}", SECRETS))
            servers.append(Server(root, f"nats-{i}", conf, auth, env, ports[i]))
        yield servers, ports, root, conf, auth, container, local
    finally:
        for server in servers:
            server.stop()


def test_the_cluster_forms_over_authenticated_routes_and_replicates(cluster):
    servers, *_ = cluster
    for server in servers:
        others = {s.name for s in servers} - {server.name}
        assert until(lambda server=server, others=others: server.routed_to() >= others), server.log.read_text()[-2000:]

    async def replicated() -> int:
        url = f"nats://127.0.0.1:{servers[0].ports['client']}"
        client = await natsio.connect(url, "ingest", "secret-ingest")
        try:
            js = client.jetstream(timeout=5)
            config = StreamConfig(name="RAG_JOBS", subjects=["rag.jobs.>"], num_replicas=3)
            for attempt in range(20):  # the JetStream meta leader is elected once the routes are up
                try:
                    await js.add_stream(config)
                    break
                except (nats.errors.Error, nats.js.errors.Error):
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.5)
            await js.publish("rag.jobs.t1", b"one job")
            info = await js.stream_info("RAG_JOBS")
            return info.state.messages + 10 * len(info.cluster.replicas or [])
        finally:
            await client.close()

    assert asyncio.run(replicated()) == 1 + 10 * 2  # one message, held by the leader and two replicas


def test_a_server_without_the_route_password_never_joins(cluster):
    servers, ports, root, conf, auth, container, local = cluster
    wrong = {"ragmesh-nats": {**SECRETS["ragmesh-nats"], "route": "not-the-route-password"}}
    rogue = Server(root, "nats-3", conf, auth, local(container_env(container, "nats-3", wrong)), ports[3])
    try:
        assert until(lambda: any('authentication error - user "route"' in text(s.log) for s in servers))
        time.sleep(2.0)  # it keeps trying: still nobody has it
        assert rogue.routed_to() == set()
        for server in servers:
            assert "nats-3" not in server.routed_to()
            assert server.routed_to() == {s.name for s in servers} - {server.name}
    finally:
        rogue.stop()
