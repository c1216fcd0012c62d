"""Fill the index of a benchmark system straight through the index stream — the path ingestion takes
after chunking and embedding — so that search can be measured over 100k+ chunks without spending
half an hour re-embedding the same abstracts. Each abstract is embedded once by the real embed
service; documents are groups of abstracts, repeated under new ids until the chunk count is reached."""

import asyncio
import time

import grpc
import numpy as np

from rag.v1 import embed_pb2, embed_pb2_grpc, events_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.cli.local import nats_passwords
from services.common import natsio
from services.common.ids import chunk_id
from services.ingest.chunker import CHUNKER_VERSION

CHUNKS_PER_DOCUMENT = 10


async def embed_all(addr: str, texts: list[str]) -> tuple[np.ndarray, str]:
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = embed_pb2_grpc.EmbedServiceStub(channel)
        vectors, model_id = [], ""
        for start in range(0, len(texts), 64):
            reply = await stub.Embed(
                embed_pb2.EmbedRequest(texts=texts[start : start + 64], lane=embed_pb2.EMBED_LANE_BULK), timeout=300
            )
            vectors.extend(v.values for v in reply.vectors)
            model_id = reply.model_id
    return np.asarray(vectors, dtype=np.float32), model_id


async def load(
    nats_url: str, password: str, embed_addr: str, retrieve_addr: str, tenant: str, abstracts: list[dict], chunks: int
):
    texts = [f"{a['title']}. {a['text']}" for a in abstracts]
    vectors, model_id = await embed_all(embed_addr, texts)
    nc = await natsio.connect(nats_url, "ingest", password)  # index events come from ingest's user alone
    js = nc.jetstream()
    subject, published, last_seq, document = f"rag.index.{tenant}", 0, 0, 0
    while published < chunks:
        doc_id = f"bench-{document}"
        picks = [(document * CHUNKS_PER_DOCUMENT + i) % len(texts) for i in range(CHUNKS_PER_DOCUMENT)]
        batch = [
            types_pb2.Chunk(
                chunk_id=chunk_id(tenant, doc_id, 1, ordinal),
                tenant=tenant,
                doc_id=doc_id,
                version=1,
                ordinal=ordinal,
                text=texts[pick],
                title=abstracts[pick]["title"],
                acl=["public"],
                chunker_version=CHUNKER_VERSION,
            )
            for ordinal, pick in enumerate(picks)
        ]
        common = {"tenant": tenant, "doc_id": doc_id, "embedding_model_id": model_id, "job_id": f"bench-{document}"}
        upserts = events_pb2.ChunkUpserts(
            chunks=batch, vectors=vectors[picks].ravel().tolist(), dimension=vectors.shape[1]
        )
        await js.publish(subject, events_pb2.IndexBatch(**common, upserts=upserts).SerializeToString())
        activate = events_pb2.ActivateVersion(version=1, chunk_count=len(batch))
        ack = await js.publish(subject, events_pb2.IndexBatch(**common, activate=activate).SerializeToString())
        last_seq, published, document = ack.seq, published + len(batch), document + 1
    await natsio.close(nc)
    async with grpc.aio.insecure_channel(retrieve_addr) as channel:
        stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
        started = time.monotonic()
        while (await stub.GetIndexInfo(retrieve_pb2.GetIndexInfoRequest())).index_watermark < last_seq:
            if time.monotonic() - started > 3600:
                raise TimeoutError("retrieve did not apply the loaded index events within an hour")
            await asyncio.sleep(1)
    return published


def bulk_load(bench, tenant: str, abstracts: list[dict], chunks: int) -> int:
    """Chunks now searchable in `tenant` of the BenchSystem `bench`."""
    ports = bench.ports
    return asyncio.run(
        load(
            f"nats://127.0.0.1:{ports.grpc('nats')}",
            nats_passwords(bench.system.data)["ingest"],
            ports.addr("embed"),
            ports.addr("retrieve"),
            tenant,
            abstracts,
            chunks,
        )
    )
