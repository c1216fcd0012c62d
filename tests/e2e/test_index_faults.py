"""Fault injection on the index pipeline with embedded engines: a few hundred documents ingested,
changed, re-permissioned and deleted through the gateway while ingest, retrieve, embed and
nats-server are SIGKILLed (`ragmesh up` restarts them). Afterwards, document by document: every
live document is in both engines exactly once, at its latest version, with its latest ACL; no
deleted or replaced version is stored or found."""

import json
import os
import signal
import time

import grpc
import pytest
from helpers import free_port_block

from rag.v1 import retrieve_pb2, retrieve_pb2_grpc
from services.retrieve.backends.dense_tiers import TieredDenseIndex
from services.retrieve.backends.tantivy_index import TantivyIndex

from .faults import Killer, Workload, check_engine, check_searches, patiently, retrieve_searcher, settled_registry
from .system import System

pytestmark = pytest.mark.e2e

DOCUMENTS = 200
TENANT = "chaos"
ENV = {
    "RAGMESH_JOB_ACK_WAIT_SECONDS": "3",
    "RAGMESH_MAX_DELIVERIES": "50",  # faults keep coming: a job must outlast them, not be dead-lettered
    "RAGMESH_INDEX_LINGER_SECONDS": "0.02",
}


def caught_up(system) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{system.port_base + 4}") as channel:
        stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
        for _ in range(600):
            [info] = patiently(
                lambda: stub.ListGenerations(retrieve_pb2.ListGenerationsRequest(), timeout=30)
            ).generations
            if info.lag == 0 and info.caught_up:
                return
            time.sleep(0.5)
    raise AssertionError("retrieve never caught up with the index stream")


def test_killed_processes_lose_nothing_double_nothing_and_resurrect_nothing(tmp_path):
    system = System(tmp_path / "data", free_port_block(), env=ENV).start()
    stopped = False
    try:
        client = system.client(system.client().create_key(TENANT, principals=["alice", "bob"]))

        def kill(name: str) -> None:
            pid = json.loads((system.data / "pids.json").read_text())[name]
            os.kill(pid, signal.SIGKILL)

        workload = Workload(client, DOCUMENTS)
        names = ["ingest", "retrieve", "embed", "nats"]
        killer = Killer(kill, names)
        killer.start()
        try:
            workload.run()
        finally:
            killer.stop_after(rounds=2)
        # Kills go on while the workload runs (more rounds on a slower machine): each at least twice.
        assert sorted(n for n in names if killer.killed.count(n) < 2) == [], killer.killed
        records = settled_registry(client, workload)
        caught_up(system)
        check_searches(retrieve_searcher(system.port_base + 4, TENANT), workload, records)
        system.stop()
        stopped = True
        # The engines themselves, opened from the data folder once everything has stopped.
        dense = TieredDenseIndex(system.data / "retrieve" / "dense", 384, maintain_seconds=0)
        lexical = TantivyIndex(system.data / "retrieve" / "lexical")
        dense.open()
        lexical.open()
        try:
            for name, engine in (("dense", dense), ("lexical", lexical)):
                check_engine(name, engine, workload, records, TENANT)
        finally:
            dense.close()
            lexical.close()
    finally:
        if not stopped:
            system.stop()
