"""Three retrieve replicas over shared engines (a Qdrant server and OpenSearch: the local servers
speaking their REST protocols, or real ones at RAGMESH_TEST_QDRANT_URL / RAGMESH_TEST_OPENSEARCH_URL):
one writer at a time holds the lease, the others only search, and every replica answers from the
same engines. The fault-injection workload runs while ingest, embed, nats-server and retrieve
replicas (the writer among them) are SIGKILLed and engine writes fail; then every document is
checked in both engines and through every replica."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import grpc
import pytest
from helpers import free_port_block, port_free
from opensearch_server import OpenSearchServer
from qdrant_server import QdrantServer

from rag.v1 import retrieve_pb2, retrieve_pb2_grpc
from services.cli.local import nats_passwords
from services.retrieve.backends.opensearch_index import OpenSearchIndex
from services.retrieve.backends.qdrant_server import QdrantServerIndex

from .faults import Killer, Workload, check_engine, check_searches, patiently, retrieve_searcher, settled_registry
from .system import System

pytestmark = pytest.mark.e2e

TENANT = "shared"
DOCUMENTS = 120


@pytest.fixture(scope="module")
def engines():
    qdrant_url, opensearch_url = (
        os.environ.get("RAGMESH_TEST_QDRANT_URL"),
        os.environ.get("RAGMESH_TEST_OPENSEARCH_URL"),
    )
    qdrant = None if qdrant_url else QdrantServer().start()
    opensearch = None if opensearch_url else OpenSearchServer().start()
    yield (qdrant_url or qdrant.url, qdrant), (opensearch_url or opensearch.url, opensearch)
    for fake in (qdrant, opensearch):
        if fake is not None:
            fake.stop()


class Replica:
    """One more retrieve process, beside the one `ragmesh up` runs."""

    def __init__(self, system: System, name: str, env: dict) -> None:
        self.system, self.name, self.env = system, name, env
        self.port = next(p for p in range(system.port_base + 20, system.port_base + 40) if port_free(p))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Replica":
        env = {
            **os.environ,
            **self.env,
            "RAGMESH_GRPC_PORT": str(self.port),
            "RAGMESH_METRICS_PORT": "0",
            "RAGMESH_NATS_URL": f"nats://127.0.0.1:{self.system.port_base}",
            "RAGMESH_EMBED_ADDR": f"127.0.0.1:{self.system.port_base + 3}",
            "RAGMESH_DATA_DIR": str(self.system.data / self.name),
            "RAGMESH_INSTANCE": self.name,
            "RAGMESH_NATS_PASSWORD": nats_passwords(self.system.data)["retrieve"],
        }
        log = open(self.system.data / "logs" / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services.retrieve"], env=env, stdout=log, stderr=log)
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def stub(port: int) -> retrieve_pb2_grpc.RetrieveServiceStub:
    return retrieve_pb2_grpc.RetrieveServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


def generation_one(port: int) -> retrieve_pb2.GenerationInfo:
    [info] = patiently(
        lambda: stub(port).ListGenerations(retrieve_pb2.ListGenerationsRequest(), timeout=10)
    ).generations
    return info


def wait_caught_up(ports: list[int], timeout: float = 300) -> list[retrieve_pb2.GenerationInfo]:
    deadline = time.monotonic() + timeout
    while True:
        infos = [generation_one(p) for p in ports]
        if all(i.caught_up and i.lag == 0 for i in infos) and len({i.index_watermark for i in infos}) == 1:
            return infos
        assert time.monotonic() < deadline, [(i.index_watermark, i.lag, i.caught_up) for i in infos]
        time.sleep(0.5)


def test_three_replicas_share_engines_with_one_writer_through_faults(tmp_path, engines):
    (qdrant_url, qdrant), (opensearch_url, opensearch) = engines
    names = {"RAGMESH_DENSE_COLLECTION": f"e2e_{uuid.uuid4().hex[:8]}", "RAGMESH_LEXICAL_INDEX": f"e2e-{os.getpid()}"}
    env = {
        "RAGMESH_DENSE_URL": qdrant_url,
        "RAGMESH_LEXICAL_URL": opensearch_url,
        **names,
        "RAGMESH_WRITER_LEASE_SECONDS": "3",
        "RAGMESH_JOB_ACK_WAIT_SECONDS": "3",
        "RAGMESH_MAX_DELIVERIES": "50",
    }
    system = System(tmp_path / "data", free_port_block(48), env=env).start()
    replicas = [Replica(system, f"replica-{i}", env).start() for i in (1, 2)]
    try:
        ports = [system.port_base + 4] + [r.port for r in replicas]
        infos = wait_caught_up(ports)
        writers = {i.writer for i in infos}
        assert len(writers) == 1 and writers != {""}, writers  # every replica names the same one writer

        client = system.client(system.client().create_key(TENANT, principals=["alice", "bob"]))

        def kill(name: str) -> None:
            if name.startswith("replica-"):
                replicas[int(name[-1]) - 1].kill()
            elif name == "engines":
                for fake in (qdrant, opensearch):
                    if fake is not None:
                        fake.fail_writes(6)
            else:
                os.kill(json.loads((system.data / "pids.json").read_text())[name], signal.SIGKILL)

        workload = Workload(client, DOCUMENTS, seed=23)
        killer = Killer(kill, ["ingest", "embed", "nats", "retrieve", "replica-1", "replica-2", "engines"])
        killer.start()
        try:
            workload.run()
        finally:
            killer.stop_after(rounds=1)
        records = settled_registry(client, workload)
        infos = wait_caught_up(ports)
        assert len({i.writer for i in infos}) == 1
        for port in ports:
            check_searches(retrieve_searcher(port, TENANT), workload, records)
        dense = QdrantServerIndex(384, url=qdrant_url, collection=names["RAGMESH_DENSE_COLLECTION"])
        lexical = OpenSearchIndex(opensearch_url, names["RAGMESH_LEXICAL_INDEX"])
        dense.open()
        lexical.open()
        try:
            for name, engine in (("dense", dense), ("lexical", lexical)):
                check_engine(name, engine, workload, records, TENANT)
        finally:
            dense.close()
            lexical.close()
        if qdrant is not None and opensearch is not None:
            assert qdrant.faults.failed > 0 and opensearch.failed > 0
    finally:
        for replica in replicas:
            replica.stop()
        system.stop()
