"""Retrieve in-process against a real nats-server and the real embed service, counting the Embed
calls the embed service receives: a query is embedded once per tenant and model, another tenant's
identical query is embedded again, and a lexical-only search never embeds its query."""

import asyncio
from contextlib import asynccontextmanager

import grpc
from helpers import free_port_block, serving

from rag.v1 import embed_pb2, embed_pb2_grpc, events_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.common import natsio
from services.common.config import EmbedSettings, RetrieveSettings
from services.common.ids import chunk_id
from services.embed.server import EmbedService
from services.retrieve.server import RetrieveService

DOCUMENTS = {
    ("t1", "otters"): "Sea otters hold hands while they sleep so that they do not drift apart.",
    ("t2", "otters"): "Sea otters hold hands while they sleep so that they do not drift apart.",
    ("t1", "cairo"): "القاهرة هي عاصمة مصر وأكبر مدنها، وتقع على ضفاف نهر النيل.",
}


class CountingEmbedService(EmbedService):
    """The real embed service, recording every Embed call it serves."""

    def __init__(self, settings: EmbedSettings) -> None:
        super().__init__(settings)
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    async def Embed(self, request, context):
        self.calls.append((request.tenant, tuple(request.texts)))
        return await super().Embed(request, context)


async def index(js, embed_addr: str) -> None:
    async with grpc.aio.insecure_channel(embed_addr) as channel:
        texts = list(DOCUMENTS.values())
        reply = await embed_pb2_grpc.EmbedServiceStub(channel).Embed(
            embed_pb2.EmbedRequest(texts=texts, lane=embed_pb2.EMBED_LANE_BULK)
        )
    for ((tenant, doc_id), text), vector in zip(DOCUMENTS.items(), reply.vectors, strict=True):
        chunk = types_pb2.Chunk(
            chunk_id=chunk_id(tenant, doc_id, 1, 0), tenant=tenant, doc_id=doc_id, version=1, text=text
        )
        common = {"tenant": tenant, "doc_id": doc_id, "embedding_model_id": reply.model_id}
        upserts = events_pb2.ChunkUpserts(chunks=[chunk], vectors=list(vector.values), dimension=len(vector.values))
        activate = events_pb2.ActivateVersion(version=1, chunk_count=1)
        for event in (
            events_pb2.IndexBatch(**common, upserts=upserts),
            events_pb2.IndexBatch(**common, activate=activate),
        ):
            await natsio.publish(js, f"rag.index.{tenant}", event.SerializeToString())


@asynccontextmanager
async def searching(nats_server, tmp_path, **settings):
    """(retrieve stub, counting embed service, retrieve service) over the indexed DOCUMENTS."""
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    embed_port, retrieve_port = free_port_block(1), free_port_block(1)
    embed = CountingEmbedService(EmbedSettings(grpc_port=embed_port))
    try:
        async with serving(embed, embed_port) as embed_addr:
            await index(js, embed_addr)
            retrieve = RetrieveService(
                RetrieveSettings(
                    grpc_port=retrieve_port,
                    nats_url=nats_server.url,
                    embed_addr=embed_addr,
                    data_dir=tmp_path,
                    drain_seconds=1,
                    **settings,
                )
            )
            async with serving(retrieve, retrieve_port) as addr, grpc.aio.insecure_channel(addr) as channel:
                stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
                for tenant in ("t1", "t2"):  # every document searchable before anything is counted
                    lexical = types_pb2.FusionParams(method="lexical")
                    ask = retrieve_pb2.RetrieveRequest(tenant=tenant, query="otters", top_k=3, fusion=lexical)
                    for _ in range(100):
                        if (await stub.Retrieve(ask)).hits:
                            break
                        await asyncio.sleep(0.1)
                embed.calls.clear()
                yield stub, embed, retrieve
    finally:
        await natsio.close(nc)


def asked(tenant: str, query: str, method: str = "") -> retrieve_pb2.RetrieveRequest:
    return retrieve_pb2.RetrieveRequest(
        tenant=tenant, query=query, top_k=3, fusion=types_pb2.FusionParams(method=method)
    )


async def test_a_repeated_query_is_embedded_once_per_tenant(nats_server, tmp_path):
    async with searching(nats_server, tmp_path) as (stub, embed, retrieve):
        first = await stub.Retrieve(asked("t1", "Why do sea otters hold hands?"))
        again = await stub.Retrieve(asked("t1", "  Why do sea   otters hold hands? "))
        assert embed.calls == [("t1", ("Why do sea otters hold hands?",))]
        assert first.query_tokens > 0 and again.query_tokens == 0  # the second cost no embedding
        assert [h.chunk.chunk_id for h in again.hits] == [h.chunk.chunk_id for h in first.hits]
        assert again.hits[0].chunk.doc_id == "otters" and again.hits[0].dense_matched
        # The query's language analysis is kept the same way: for t1, not for t2.
        assert retrieve.analyses.get("t1", "Why do sea otters hold hands?").language == "en"
        assert retrieve.analyses.get("t2", "Why do sea otters hold hands?") is None

        # Tenant t2's identical query is not served from t1's entry: it is embedded for t2.
        other = await stub.Retrieve(asked("t2", "Why do sea otters hold hands?"))
        assert embed.calls[1:] == [("t2", ("Why do sea otters hold hands?",))]
        assert other.query_tokens == first.query_tokens
        assert [h.chunk.tenant for h in other.hits] == ["t2"]

        # Another query of t1 is embedded; the first is still kept.
        await stub.Retrieve(asked("t1", "Where do otters sleep?"))
        await stub.Retrieve(asked("t1", "Why do sea otters hold hands?"))
        assert [text for _, (text,) in embed.calls] == [
            "Why do sea otters hold hands?",
            "Why do sea otters hold hands?",
            "Where do otters sleep?",
        ]


async def test_a_tenants_cache_holds_its_last_queries_only(nats_server, tmp_path):
    async with searching(nats_server, tmp_path, query_vector_cache_size=2) as (stub, embed, _):
        for query in ("otters", "sea otters", "sleeping otters", "otters"):
            await stub.Retrieve(asked("t1", query))
        # "otters" was the least recently used of three: pushed out, embedded again.
        assert [text for _, (text,) in embed.calls] == ["otters", "sea otters", "sleeping otters", "otters"]
        await stub.Retrieve(asked("t1", "sleeping otters"))
        assert len(embed.calls) == 4


async def test_a_lexical_only_search_never_embeds_its_query(nats_server, tmp_path):
    async with searching(nats_server, tmp_path) as (stub, embed, _):
        lexical = await stub.Retrieve(asked("t1", "otters hold hands", "lexical"))
        assert [h.chunk.doc_id for h in lexical.hits] == ["otters"] and lexical.query_tokens == 0
        assert not lexical.hits[0].dense_matched

        # auto, for a language the embedding model does not know (RAGMESH_DENSE_LANGUAGES=en): BM25 alone.
        arabic = await stub.Retrieve(asked("t1", "ما هي عاصمة مصر؟", "auto"))
        assert arabic.fusion.decision.reason == "dense_blind" and arabic.fusion.decision.query_language == "ar"
        assert [h.chunk.doc_id for h in arabic.hits] == ["cairo"]
        assert embed.calls == []

        # When BM25 finds nothing for such a query, the dense side is searched after all.
        await stub.Retrieve(asked("t1", "من اخترع الهاتف المحمول؟", "auto"))
        assert embed.calls == [("t1", ("من اخترع الهاتف المحمول؟",))]

        # Any other mode embeds the query.
        await stub.Retrieve(asked("t1", "otters hold hands", "rrf"))
        assert embed.calls[1:] == [("t1", ("otters hold hands",))]
