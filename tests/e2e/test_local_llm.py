"""`ragmesh up --llm local`: the supervisor starts the local LLM (llama.cpp with the packaged model)
beside the services, generate answers through it, and a stop ends it with embed, after generate."""

import json
import signal

import pytest
from helpers import free_port_block
from llm_server import MODEL

from rag.v1 import types_pb2
from services.cli.ports import describe_taken

from .system import System
from .test_supervisor import log_records, running, taken_ports, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_up_with_a_local_llm_answers_through_it_and_stops_it_in_its_wave(tmp_path):
    system = System(tmp_path / "ragmesh", free_port_block(), args=("--llm", "local")).start()
    try:
        children = system.pids
        assert set(children) == {"nats", "llm", "embed", "generate", "retrieve", "ingest", "gateway"}
        client = system.client()
        text = b"The Zorblat bridge was opened in 1931. It crosses the river Quell at Arnsby."
        assert client.ingest_and_wait("bridge", text, title="Zorblat bridge").status == types_pb2.JOB_STATUS_DONE
        _, final = client.ask("When was the Zorblat bridge opened?", timeout=120)
        m = final.manifest
        assert (m.provider, m.provider_model) == ("openai", MODEL)
        assert m.generation_parameters["max_sources"] == "3" and m.generation_parameters["source_tokens"] == "90"
        assert final.status == types_pb2.ANSWER_STATUS_ANSWERED, final
        assert "1931" in final.answer and {c.doc_id for c in final.citations} == {"bridge"}
        assert m.usage.prompt_tokens > 100 and m.usage.completion_tokens > 0
    finally:
        assert system.stop(signal.SIGTERM) == 0
    wait_until(lambda: not any(running(pid) for pid in children.values()), f"every child of {children} ended")
    assert taken_ports(system) == [] and describe_taken({"llm": system.port_base + 7}) == []
    # The LLM stops after generate (which calls it) has exited, and before NATS.
    generate_stopped = [r for r in log_records(system, "generate") if r["msg"] == "stopped"][-1]["ts"]
    llm = [json.loads(line) for line in (system.data / "logs" / "llm.log").read_text().splitlines() if line[:1] == "{"]
    assert [r["msg"] for r in llm][-2:] == ["stopping", "stopped"]
    assert llm[-2]["ts"] >= generate_stopped
