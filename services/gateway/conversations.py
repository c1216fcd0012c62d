"""Conversations whose turns ragmesh keeps: NATS KV (`rag_conversations`, TTL from the last turn),
keyed by tenant, API key and the caller's conversation id, so no other key (even of the same tenant)
can read or continue one. Turns are appended by compare-and-set; the last N are kept."""

import hashlib
import re
import time

import grpc
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import types_pb2
from services.common.refusal import Refused

VALID_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
MAX_HISTORY_TURNS = 50
MAX_HISTORY_CHARS = 40_000
ATTEMPTS = 5


def check_history(turns: list[types_pb2.Turn], conversation_id: str) -> None:
    """History given by the caller within limits, or a well-formed conversation id, not both."""
    if turns and conversation_id:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "give earlier turns (history) or a conversation_id, not both")
    if conversation_id and not VALID_ID.fullmatch(conversation_id):
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "conversation_id is 1-128 of a-z, A-Z, 0-9, '_', '-' and '.'")
    if len(turns) > MAX_HISTORY_TURNS:
        limit = MAX_HISTORY_TURNS
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"history has {len(turns)} turns; the limit is {limit}")
    size = sum(len(t.question) + len(t.answer) + len(t.query) for t in turns)
    if size > MAX_HISTORY_CHARS:
        raise Refused(
            grpc.StatusCode.INVALID_ARGUMENT, f"history has {size} characters; the limit is {MAX_HISTORY_CHARS}"
        )


def storage_key(tenant: str, key_id: str, conversation_id: str) -> str:
    """A KV key from names of a restricted alphabet; the caller's id is hashed, so any valid id fits."""
    return f"{tenant}.{key_id}.{hashlib.sha256(conversation_id.encode()).hexdigest()[:40]}"


class Conversations:
    def __init__(self, kv: KeyValue, max_turns: int) -> None:
        self.kv, self.max_turns = kv, max_turns

    async def _read(self, key: str) -> tuple[types_pb2.Conversation, int]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return types_pb2.Conversation(), 0
        if entry.value is None:  # deleted or purged
            return types_pb2.Conversation(), entry.revision or 0
        return types_pb2.Conversation.FromString(entry.value), entry.revision

    async def turns(self, caller, conversation_id: str) -> list[types_pb2.Turn]:
        conversation, _ = await self._read(storage_key(caller.tenant, caller.key_id, conversation_id))
        return list(conversation.turns)[-self.max_turns :]

    async def append(self, caller, conversation_id: str, turn: types_pb2.Turn) -> None:
        """Add a turn; a concurrent append to the same conversation is read again and kept."""
        key = storage_key(caller.tenant, caller.key_id, conversation_id)
        for _ in range(ATTEMPTS):
            conversation, revision = await self._read(key)
            turns = [*conversation.turns, turn][-self.max_turns :]
            value = types_pb2.Conversation(turns=turns, updated_unix_ms=int(time.time() * 1000)).SerializeToString()
            try:
                if revision:
                    await self.kv.update(key, value, last=revision)
                else:
                    await self.kv.create(key, value)
                return
            except KeyWrongLastSequenceError:
                continue
        raise Refused(grpc.StatusCode.ABORTED, "the conversation changed under this turn too often; ask again")
