"""Answer cache. The key holds everything that decides an answer: tenant, the caller's ACL scope,
the normalised question, the parameters, and the index watermark and embedding model: an index
change or another ACL scope can never be served a stale or foreign answer."""

import hashlib
import json
import re
import time
from collections import OrderedDict

from rag.v1 import gateway_pb2, types_pb2


def normalise(question: str) -> str:
    return re.sub(r"\s+", " ", question.strip().lower())


def cache_key(
    tenant: str,
    principals,
    question: str,
    top_k: int,
    fusion: types_pb2.FusionParams,
    watermark: int,
    model_id: str,
    options: str = "",
) -> str:
    """`options`: any other request parameter that changes the answer, serialised."""
    parts = [
        tenant,
        sorted(set(principals)),
        normalise(question),
        top_k,
        fusion.SerializeToString(deterministic=True).hex(),
        watermark,
        model_id,
        options,
    ]
    # JSON quotes every string: no value, whatever it holds, can pass for two (`["x,y"]` vs `["x", "y"]`).
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


class AnswerCache:
    def __init__(self, size: int, ttl_seconds: float, clock=time.monotonic) -> None:
        self.size, self.ttl, self.clock = size, ttl_seconds, clock
        self.entries: OrderedDict[str, tuple[float, gateway_pb2.AskFinal]] = OrderedDict()

    def get(self, key: str) -> gateway_pb2.AskFinal | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        stored, answer = entry
        if self.clock() - stored > self.ttl:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return answer

    def put(self, key: str, answer: gateway_pb2.AskFinal) -> None:
        if self.size <= 0:
            return
        self.entries[key] = (self.clock(), answer)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
