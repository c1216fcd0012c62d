"""The Python client against the whole system: the README's examples as written, uploads from a
path, a seekable stream and a one-way pipe, streamed answers (sync and asyncio), rate limits waited
out by their hints (each wait counted against the refusals the gateway counted) and a hint past the
deadline raised at once."""

import io
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, types_pb2
from ragmesh_client import AsyncClient, Client, RetryPolicy

from .system import System

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
LIMITS = {
    "paced": {"query_rate": 1, "query_burst": 1, "key_query_rate": 0},
    "slow": {"query_rate": 0.02, "query_burst": 1, "key_query_rate": 0},
}
ON_CALL = b"# On-call\nThe on-call schedule rotates every Monday: the next engineer takes the pager at 09:00.\n"


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    s = System(
        tmp_path_factory.mktemp("ragmesh"), free_port_block(), env={"RAGMESH_TENANT_LIMITS": json.dumps(LIMITS)}
    ).start()
    yield s
    s.stop()


def key(system, tenant: str) -> str:
    return system.client().create_key(tenant)


def readme_examples() -> list[str]:
    section = README.read_text().split("### Python client", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_examples_run_as_written(system, tmp_path):
    (tmp_path / "handbook").mkdir()
    (tmp_path / "handbook" / "on-call.md").write_bytes(ON_CALL)
    env = {**os.environ, "RAGMESH_ADDR": system.gateway, "RAGMESH_API_KEY": key(system, "readme")}
    outputs = []
    for example in readme_examples():
        ran = subprocess.run([sys.executable, "-c", example], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert ran.returncode == 0, example + ran.stderr
        outputs.append(ran.stdout)
    sync, streamed, errors = outputs
    assert "rotates every Monday" in sync and "  [1] on-call.md" in sync and "['on-call.md']" in sync
    assert "incident commander" in streamed and streamed.rstrip().endswith("ANSWER_STATUS_ANSWERED escalation.txt")
    assert errors.startswith("INVALID_ARGUMENT ")


def test_uploads_from_a_path_a_stream_and_a_pipe_and_a_streamed_answer(system, tmp_path):
    path = tmp_path / "tides.md"
    path.write_bytes(b"# Tides\nSpring tides follow the full and new moon, when the sun and moon align.\n")
    read, write = os.pipe()
    threading.Thread(
        target=lambda: (
            os.write(write, b"Neap tides come at the quarter moons, with the smallest range."),
            os.close(write),
        ),
        daemon=True,
    ).start()
    with Client(system.gateway, key(system, "clients")) as rag, open(read, "rb", buffering=0) as pipe:
        jobs = [
            rag.upload(path, acl=["public"]),
            rag.upload(io.BytesIO(b"Tide pools keep anemones wet at low tide."), doc_id="pools.txt"),
            rag.upload(pipe, doc_id="neap.txt", title="Neap tides"),
        ]
        assert [j.doc_id for j in jobs] == ["tides.md", "pools.txt", "neap.txt"]
        assert [rag.wait_for_job(j.job_id).status for j in jobs] == [types_pb2.JOB_STATUS_DONE] * 3
        assert rag.get_document("neap.txt").versions[-1].chunk_count == 1
        deltas, final = [], None
        for event in rag.ask_stream("When do spring tides come?", no_cache=True):
            if event.HasField("final"):
                final = event.final
            else:
                deltas.append(event.delta)
        assert final.status == types_pb2.ANSWER_STATUS_ANSWERED and "".join(deltas) == final.answer
        assert final.citations[0].doc_id == "tides.md"
        assert {d.doc_id for d in rag.list_documents()} == {"tides.md", "pools.txt", "neap.txt"}
        with pytest.raises(grpc.RpcError) as refused:
            rag.get_document("missing.txt")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_asyncio_client_does_the_same(system):
    async with AsyncClient(system.gateway, key(system, "asyncio")) as rag:
        job = await rag.upload(io.BytesIO(b"Kelp forests shelter sea otters along rocky coasts."), doc_id="kelp.txt")
        assert (await rag.wait_for_job(job.job_id)).status == types_pb2.JOB_STATUS_DONE
        hits = (await rag.search("sea otters", top_k=3)).hits
        assert [h.chunk.doc_id for h in hits] == ["kelp.txt"]
        pieces = [e.delta async for e in rag.ask_stream("What shelters sea otters?") if not e.HasField("final")]
        final = await rag.ask("What shelters sea otters?")
        assert "".join(pieces) == final.answer and final.cached  # the second ask came from the cache
        assert (await rag.usage()).today.queries == 2  # the search and the first answer; a cached one is free


def refused_searches(system) -> float:
    url = f"http://127.0.0.1:{system.port_base + 11}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    wanted = 'ragmesh_rpc_latency_seconds_count{code="RESOURCE_EXHAUSTED",method="Search",service="gateway"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(wanted))


def test_a_rate_limit_is_waited_out_by_its_hint(system):
    """One search a second: back-to-back searches are refused with a hint, waited for, and all
    answer; every wait the client took is a refusal the gateway counted."""
    retries = []
    before = refused_searches(system)
    with Client(system.gateway, key(system, "paced"), retry=RetryPolicy(on_retry=retries.append)) as rag:
        found = [rag.search("anything", top_k=1) for _ in range(3)]
    assert len(found) == 3 and all(r.query_id for r in found)
    assert len(retries) >= 2 and {r.code for r in retries} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert refused_searches(system) - before == len(retries)


def test_a_hint_past_the_deadline_is_raised_at_once(system):
    retries = []
    with Client(system.gateway, key(system, "slow"), retry=RetryPolicy(on_retry=retries.append)) as rag:
        rag.search("first", top_k=1)
        with pytest.raises(grpc.RpcError) as refused:
            rag.search("second", top_k=1, timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and retries == []
    assert int(dict(refused.value.trailing_metadata())["retry-after-ms"]) > 5000
    assert "query rate" in refused.value.details()


def test_a_key_is_not_sent_in_plaintext_off_this_machine():
    from ragmesh_client import PlaintextRefused

    with pytest.raises(PlaintextRefused, match="refusing to send the API key in plaintext to 10.255.255.1:50051"):
        Client("10.255.255.1:50051", "rmk_secret")
    assert gateway_pb2.ROLE_READER == 1  # the messages are the package's own rag.v1 ones
