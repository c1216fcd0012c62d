"""Mutual TLS between the services, TLS at the gateway: the whole system with certificates."""

import json

import grpc
import pytest
from certs import make_pki
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import free_port_block

from .system import System, cli, cli_json

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    return make_pki(folder / "ours"), make_pki(folder / "stranger", "stranger")


@pytest.fixture(scope="module")
def system(tmp_path_factory, pki):
    ours, _ = pki
    env = {
        "RAGMESH_TLS_CERT_FILE": str(ours["cert"]),
        "RAGMESH_TLS_KEY_FILE": str(ours["key"]),
        "RAGMESH_TLS_CA_FILE": str(ours["ca"]),
    }
    s = System(tmp_path_factory.mktemp("tls"), free_port_block(), env=env).start()
    yield s
    s.stop()


def health(addr: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = grpc.secure_channel(addr, credentials) if credentials else grpc.insecure_channel(addr)
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def test_questions_flow_through_mutual_tls(system, pki, tmp_path):
    ours, _ = pki
    tls_env = {"RAGMESH_TLS_CA_FILE": str(ours["ca"])}  # a caller outside: verifies the gateway, no certificate
    (tmp_path / "otters.md").write_text("Sea otters hold hands while they sleep so that they do not drift apart.")
    summary = json.loads(cli(system, "ingest", "--public", "--wait", "--json", str(tmp_path), env=tls_env))
    assert summary["indexed"] == 1
    answer = cli_json(system, "ask", "Why do sea otters hold hands?", env=tls_env)
    assert answer["status"] == "answered"
    assert answer["citations"][0]["doc_id"].endswith("otters.md")


def test_plaintext_and_strangers_are_refused(system, pki):
    ours, stranger = pki
    internal = f"127.0.0.1:{system.port_base + 4}"  # retrieve
    ca = ours["ca"].read_bytes()
    with_cert = grpc.ssl_channel_credentials(ca, ours["key"].read_bytes(), ours["cert"].read_bytes())
    assert health(internal, with_cert) == grpc.StatusCode.OK
    assert health(internal, None) == grpc.StatusCode.UNAVAILABLE
    assert health(internal, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.UNAVAILABLE
    foreign = grpc.ssl_channel_credentials(ca, stranger["key"].read_bytes(), stranger["cert"].read_bytes())
    assert health(internal, foreign) == grpc.StatusCode.UNAVAILABLE
    assert health(system.gateway, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.OK
    assert health(system.gateway, None) == grpc.StatusCode.UNAVAILABLE
