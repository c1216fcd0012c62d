"""What retrieve keeps of the queries it served, per tenant, so a repeated query skips the embed
round trip and its language analysis.

Entries are keyed by tenant first: a tenant only ever hits its own entries, so the latency of a
search says nothing about what other tenants asked. Both levels are bounded LRUs: at most
`per_tenant` queries for each of at most `tenants` tenants. Query vectors are keyed by the
embedding model's id and the query text with its whitespace collapsed (the text that is embedded)."""

from array import array
from collections import OrderedDict
from typing import Generic, TypeVar

import grpc
from opentelemetry import trace

from rag.v1 import embed_pb2

tracer = trace.get_tracer("ragmesh.retrieve")

Key = TypeVar("Key")
Value = TypeVar("Value")


def query_text(query: str) -> str:
    """The text a query is embedded as, and cached under: runs of whitespace as one space."""
    return " ".join(query.split())


class TenantLRU(Generic[Key, Value]):
    def __init__(self, per_tenant: int, tenants: int) -> None:
        self.per_tenant, self.tenants = per_tenant, tenants
        self._by_tenant: OrderedDict[str, OrderedDict[Key, Value]] = OrderedDict()

    def get(self, tenant: str, key: Key) -> Value | None:
        entries = self._by_tenant.get(tenant)
        if entries is None or key not in entries:
            return None
        entries.move_to_end(key)
        self._by_tenant.move_to_end(tenant)
        return entries[key]

    def put(self, tenant: str, key: Key, value: Value) -> None:
        if self.per_tenant <= 0 or self.tenants <= 0:
            return
        entries = self._by_tenant.get(tenant)
        if entries is None:
            entries = self._by_tenant[tenant] = OrderedDict()
            if len(self._by_tenant) > self.tenants:
                self._by_tenant.popitem(last=False)
        self._by_tenant.move_to_end(tenant)
        entries[key] = value
        entries.move_to_end(key)
        if len(entries) > self.per_tenant:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_tenant.values())


class QueryVectorCache:
    def __init__(self, per_tenant: int, tenants: int) -> None:
        self._kept: TenantLRU[tuple[str, str], array] = TenantLRU(per_tenant, tenants)

    def get(self, tenant: str, model_id: str, text: str) -> list[float] | None:
        found = self._kept.get(tenant, (model_id, text))
        return found.tolist() if found is not None else None

    def put(self, tenant: str, model_id: str, text: str, vector: list[float]) -> None:
        self._kept.put(tenant, (model_id, text), array("f", vector))  # 4 bytes a value: embeddings are float32

    def __len__(self) -> int:
        return len(self._kept)


class ModelMismatch(Exception):
    """The embed service embeds with another model than the one the generation was built with."""


class ModelNotServed(Exception):
    """The embed service does not serve the generation's model (its refusal, which names what it serves)."""


class QueryEmbedding:
    """One search's query vector, embedded at most once and only when asked for: from the tenant's
    cache when it holds the query, else by the embed service (then cached)."""

    def __init__(self, embed, cache: QueryVectorCache, tenant: str, model_id: str, query: str, timeout) -> None:
        self.embed, self.cache, self.tenant, self.timeout = embed, cache, tenant, timeout
        self.model_id = model_id  # the generation's model; "" while it holds no vectors
        self.text = query_text(query)
        self.tokens = 0  # what embedding this query cost: 0 when it came from a cache or was not embedded
        self.asked = False  # whether the dense side wanted the vector (it was searched)

    async def __call__(self) -> list[float]:
        self.asked = True
        cached = self.cache.get(self.tenant, self.model_id, self.text) if self.model_id else None
        if cached is not None:
            return cached
        with tracer.start_as_current_span("rag.retrieve.embed_query"):
            lane = embed_pb2.EMBED_LANE_INTERACTIVE
            request = embed_pb2.EmbedRequest(texts=[self.text], lane=lane, tenant=self.tenant, model_id=self.model_id)
            try:
                embedded = await self.embed.Embed(request, timeout=self.timeout())
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "not served" in (exc.details() or ""):
                    raise ModelNotServed(exc.details()) from None
                raise
        if self.model_id and embedded.model_id != self.model_id:
            raise ModelMismatch(embedded.model_id)
        self.model_id, self.tokens = embedded.model_id, embedded.tokens
        vector = list(embedded.vectors[0].values)
        self.cache.put(self.tenant, embedded.model_id, self.text, vector)
        return vector
