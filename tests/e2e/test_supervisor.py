"""`ragmesh up` as a supervisor, with real processes: killed, it leaves no process and no port
behind; a start on taken ports fails at once naming them and their holders; Ctrl-C stops an idle
system gateway first, and lets a job in flight finish."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.cli.local import SERVICES
from services.cli.ports import describe_taken
from services.cli.up import LocalSystem, nats_binary

from .system import System

pytestmark = pytest.mark.e2e


def running(pid: int) -> bool:
    """Whether any thread of process `pid` still runs. A zombie holds no port and no memory, but
    its main thread turns zombie while the others may still be ending, holding its sockets."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return True
        except FileNotFoundError:
            continue
    return False


def wait_until(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)


def taken_ports(system: System) -> list[str]:
    return describe_taken(LocalSystem(system.data, system.port_base).needed_ports())


def log_records(system: System, name: str) -> list[dict]:
    return [json.loads(line) for line in (system.data / "logs" / f"{name}.log").read_text().splitlines() if line]


def last_stop(records: list[dict]) -> dict[str, dict]:
    """The last `draining` and `stopped` records of a service log, and everything logged between."""
    start = max(i for i, r in enumerate(records) if r["msg"] == "draining")
    after = records[start:]
    stopped = [r for r in after if r["msg"] == "stopped"]
    return {"draining": after[0], "stopped": stopped[0] if stopped else {}, "between": after}


def test_a_killed_supervisor_leaves_no_process_and_no_port_behind(tmp_path):
    system = System(tmp_path / "ragmesh", free_port_block())
    # SIGKILL of the supervisor alone, then of its process group (as a timeout would): each time on
    # the same ports and data, which the first kill must have left free.
    for kill in (os.kill, os.killpg):
        system.start()
        children = system.pids
        try:
            assert sorted(children) == sorted(["nats", *SERVICES])
            assert all(running(pid) for pid in children.values())
            kill(system.proc.pid, signal.SIGKILL)
            assert system.proc.wait(30) == -signal.SIGKILL
            pids = list(children.values())
            wait_until(lambda pids=pids: not any(running(pid) for pid in pids), f"every child of {children} ended")
            wait_until(lambda: taken_ports(system) == [], "every port of the system is free")
        finally:  # whatever failed, leave no process behind
            for pid in children.values():
                if running(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def idle_system(tmp_path_factory):
    s = System(tmp_path_factory.mktemp("idle"), free_port_block()).start()
    yield s
    s.stop()


def test_a_second_system_on_taken_ports_fails_at_once_naming_them_and_their_holders(idle_system, tmp_path):
    other = tmp_path / "other"
    command = ["up", "--data-dir", str(other), "--port-base", str(idle_system.port_base)]
    second = subprocess.run(
        [sys.executable, "-m", "services.cli", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1
    pids, base = idle_system.pids, idle_system.port_base
    nats = f"port {base} (nats) is in use by pid {pids['nats']}: {nats_binary()} -c {idle_system.data / 'nats.conf'}"
    gateway = f"port {base + 1} (gateway) is in use by pid {pids['gateway']}: {sys.executable} -m services.gateway"
    assert nats in second.stderr and gateway in second.stderr, second.stderr
    assert "give another --port-base" in second.stderr
    assert not other.exists()  # failed before starting or writing anything
    # The running system is untouched.
    assert idle_system.pids == pids and all(running(pid) for pid in pids.values())
    assert list(idle_system.client().search("lighthouse").hits) == []


def test_ctrl_c_stops_an_idle_system_in_waves_gateway_first_and_nats_last(idle_system):
    started = time.monotonic()
    assert idle_system.stop(signal.SIGINT) == 0
    # A measurement for the README, not a limit: the machine may be busy.
    print(f"idle system stopped {time.monotonic() - started:.2f} s after Ctrl-C")
    assert taken_ports(idle_system) == []
    stops = {name: last_stop(log_records(idle_system, name)) for name in SERVICES}
    for name, stop in stops.items():
        assert stop["stopped"], f"{name} never logged stopped"
        # Nothing cut short: no error while stopping (a NATS drain cut off at its grace period logged one).
        assert [r for r in stop["between"] if r["level"] == "ERROR"] == [], name
    # Each wave began once the one before had stopped (timestamps are ISO 8601 UTC: they sort).
    gateway, middle, embed = stops["gateway"], [stops[n] for n in ("ingest", "retrieve", "generate")], stops["embed"]
    assert gateway["stopped"]["ts"] <= min(s["draining"]["ts"] for s in middle)
    assert max(s["stopped"]["ts"] for s in middle) <= embed["draining"]["ts"]
    nats_log = (idle_system.data / "logs" / "nats.log").read_text()
    assert "Server Exiting" in nats_log and not running(idle_system.pids["nats"])


def document_of(paragraphs: int) -> bytes:
    return "\n\n".join(
        f"Section {i} of the lighthouse log notes the lamp was lit at dusk on day {i}, the fog horn sounded "
        f"{i % 7} times and the keeper recorded a wind of {i % 40} knots from the north-west."
        for i in range(paragraphs)
    ).encode()


def index_counts(system: System, tenant: str, doc_id: str) -> tuple[int, int]:
    with grpc.insecure_channel(f"127.0.0.1:{system.port_base + 4}") as channel:
        info = retrieve_pb2_grpc.RetrieveServiceStub(channel).GetIndexInfo(
            retrieve_pb2.GetIndexInfoRequest(tenant=tenant, doc_id=doc_id), timeout=10
        )
    return info.dense_points, info.lexical_documents


def test_ctrl_c_lets_a_job_in_flight_finish_before_embed_stops(tmp_path):
    system = System(tmp_path / "ragmesh", free_port_block(), env={"RAGMESH_EMBED_BATCH_SIZE": "8"}).start()
    client = system.client()
    job_id = client.ingest("lighthouse.txt", document_of(200)).job_id
    request = gateway_pb2.GetJobRequest(job_id=job_id)

    def partly_embedded() -> bool:
        job = client.stub.GetJob(request, metadata=client.metadata, timeout=10).job
        return 0 < job.chunks_embedded < job.chunks_total

    wait_until(partly_embedded, "the job showed partial progress", seconds=120)
    assert system.stop(signal.SIGINT) == 0
    ingest = last_stop(log_records(system, "ingest"))
    assert ingest["stopped"]
    messages = [r["msg"] for r in ingest["between"]]
    assert not [m for m in messages if "will retry" in m or "interrupted" in m], messages

    system.start()
    job = client.wait(job_id)
    assert job.status == types_pb2.JOB_STATUS_DONE
    assert job.chunks_embedded == job.chunks_total > 8
    # Finished within the stop: never redelivered, so never resumed, and indexed exactly once.
    assert '"resuming job"' not in (system.data / "logs" / "ingest.log").read_text()
    assert index_counts(system, "default", "lighthouse.txt") == (job.chunks_total, job.chunks_total)
    system.stop()
