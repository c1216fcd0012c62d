"""Conversations through the real system (extractive answerer, rule-based condensing): a follow-up is
searched as a standalone query recorded in the manifest; turns kept in NATS KV per tenant and key,
with their TTL; history given by the caller; bad input refused precisely."""

import asyncio

import grpc
import nats
import pytest
from helpers import free_port_block

from rag.v1 import gateway_pb2, types_pb2
from services.cli.local import nats_passwords
from services.gateway.auth import key_hash
from services.gateway.conversations import storage_key

from .system import System

pytestmark = pytest.mark.e2e
TTL = 7200
DOCS = {
    "abbott": "Greg Abbott is the governor of Texas. He took office in January 2015.",
    "perry": "Rick Perry was the governor of Texas from 2000 to 2015, before Greg Abbott.",
    "stitt": "Kevin Stitt is the governor of Oklahoma. He took office in 2019.",
    "tower": "The Eiffel Tower was completed in 1889. It stands on the Champ de Mars in Paris.",
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    env = {"RAGMESH_CONVERSATION_TTL_SECONDS": str(TTL), "RAGMESH_CONVERSATION_TURNS": "3"}
    s = System(tmp_path_factory.mktemp("conversations"), free_port_block(), env=env).start()
    client = s.client()
    for doc_id, text in DOCS.items():
        assert client.ingest_and_wait(doc_id, text.encode(), title=doc_id).status == types_pb2.JOB_STATUS_DONE
    yield s
    s.stop()


def kept(system, key_id: str, conversation_id: str, tenant: str = "default") -> tuple[types_pb2.Conversation, float]:
    """The stored conversation, read as the gateway's NATS user, and its bucket's TTL."""

    async def read():
        nc = await nats.connect(
            f"nats://127.0.0.1:{system.port_base}",
            user="gateway",
            password=nats_passwords(system.data)["gateway"],
            inbox_prefix="_INBOX_gateway",
        )
        try:
            kv = await nc.jetstream().key_value("rag_conversations")
            status = await kv.status()
            entry = await kv.get(storage_key(tenant, key_id, conversation_id))
            return types_pb2.Conversation.FromString(entry.value), status.ttl
        finally:
            await nc.close()

    return asyncio.run(read())


def key_id_of(system, key: str) -> str:
    return key_hash(key)[:12]


def test_a_follow_up_is_searched_as_a_standalone_query_and_its_turns_kept(system):
    client = system.client()
    _, first = client.ask("Who is the governor of Texas?", conversation_id="c1")
    assert first.status == types_pb2.ANSWER_STATUS_ANSWERED and first.citations[0].doc_id == "abbott"
    assert (first.manifest.rewritten_query, first.manifest.condensed_by, first.manifest.history_turns) == ("", "", 0)

    _, second = client.ask("and who came before him?", conversation_id="c1")
    m = second.manifest
    assert (m.condensed_by, m.history_turns, m.conversation_id) == ("rules", 1, "c1")
    assert m.rewritten_query == "and who came before him? Texas Greg Abbott governor"
    assert second.status == types_pb2.ANSWER_STATUS_ANSWERED
    assert "perry" in {c.doc_id for c in second.citations}

    # The raw follow-up alone finds nothing to answer from.
    _, raw = client.ask("and who came before him?")
    assert raw.status == types_pb2.ANSWER_STATUS_ABSTAINED and raw.manifest.history_turns == 0

    stored, ttl = kept(system, key_id_of(system, system.admin_key), "c1")
    assert ttl == TTL
    assert [t.question for t in stored.turns] == ["Who is the governor of Texas?", "and who came before him?"]
    assert [t.query for t in stored.turns] == ["Who is the governor of Texas?", m.rewritten_query]
    assert [t.answer for t in stored.turns] == [first.answer, second.answer]
    assert stored.turns[1].cited_doc_ids == list(dict.fromkeys(c.doc_id for c in second.citations))


def test_a_conversation_keeps_its_last_turns_only(system):
    client = system.client()
    questions = ["Who is the governor of Oklahoma?", "When did he take office?", "Who is the governor of Texas?"]
    questions += ["When did he take office?", "When was the Eiffel Tower completed?"]
    turns = []
    for question in questions:
        _, final = client.ask(question, conversation_id="long")
        turns.append(final.manifest.history_turns)
    assert turns == [0, 1, 2, 3, 3]  # RAGMESH_CONVERSATION_TURNS=3
    stored, _ = kept(system, key_id_of(system, system.admin_key), "long")
    assert [t.question for t in stored.turns] == questions[-3:]


def test_a_conversation_belongs_to_its_key(system):
    owner = system.client()
    owner.ask("Who is the governor of Texas?", conversation_id="mine")
    other_key = owner.create_key("default", gateway_pb2.ROLE_READER)
    _, final = system.client(other_key).ask("and who came before him?", conversation_id="mine")
    assert final.manifest.history_turns == 0 and final.manifest.rewritten_query == ""
    # The other key's turn went to a conversation of its own; the owner's has one turn still.
    stored, _ = kept(system, key_id_of(system, system.admin_key), "mine")
    assert [t.question for t in stored.turns] == ["Who is the governor of Texas?"]
    theirs, _ = kept(system, key_id_of(system, other_key), "mine")
    assert [t.question for t in theirs.turns] == ["and who came before him?"]


def test_history_given_by_the_caller(system):
    history = [types_pb2.Turn(question="Who is the governor of Oklahoma?", answer="Kevin Stitt is the governor.")]
    _, final = system.client().ask("When did he take office?", history=history)
    m = final.manifest
    assert (m.history_turns, m.condensed_by, m.conversation_id) == (1, "rules", "")
    assert "Oklahoma" in m.rewritten_query and "Kevin Stitt" in m.rewritten_query
    assert final.citations and final.citations[0].doc_id == "stitt" and "2019" in final.answer


def test_bad_conversations_are_refused_precisely(system):
    client = system.client()
    turn = types_pb2.Turn(question="Who?")
    for fields, message in (
        ({"conversation_id": "c1", "history": [turn]}, "not both"),
        ({"conversation_id": "no spaces allowed"}, "conversation_id is 1-128"),
        ({"conversation_id": "x" * 129}, "conversation_id is 1-128"),
        ({"history": [turn] * 51}, "history has 51 turns; the limit is 50"),
        ({"history": [types_pb2.Turn(question="q" * 40_001)]}, "history has 40001 characters"),
    ):
        with pytest.raises(grpc.RpcError) as error:
            client.ask("When did he take office?", **fields)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()
