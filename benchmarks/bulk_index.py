"""Fill the index of a benchmark system straight through the index stream — the path ingestion takes
after chunking and embedding — so that search can be measured over 100k+ chunks without ingesting
them one document at a time. Every chunk is distinct (benchmarks/distinct_corpus.py) and embedded
once by the real embed service; the vectors can be kept in a file so that a second run (another
build of the services, the same corpus) does not embed them again."""

import asyncio
import time
from pathlib import Path

import grpc
import numpy as np

from benchmarks.distinct_corpus import SampledChunk, distinct_chunks
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


def read_kept(kept: Path | None, model_id: str, count: int) -> np.ndarray | None:
    if kept is None or not kept.exists():
        return None
    with np.load(kept) as saved:
        if str(saved["model_id"]) == model_id and saved["vectors"].shape[0] == count:
            return saved["vectors"]
    return None


async def vectors_of(addr: str, texts: list[str], kept: Path | None) -> tuple[np.ndarray, str]:
    """The texts' vectors: from `kept` when it holds these texts' vectors by the service's model."""
    async with grpc.aio.insecure_channel(addr) as channel:
        info = await embed_pb2_grpc.EmbedServiceStub(channel).GetModelInfo(embed_pb2.GetModelInfoRequest(), timeout=60)
    vectors = await asyncio.to_thread(read_kept, kept, info.model_id, len(texts))
    if vectors is not None:
        return vectors, info.model_id
    vectors, model_id = await embed_all(addr, texts)
    if kept is not None:
        await asyncio.to_thread(np.savez, kept, vectors=vectors, model_id=np.array(model_id))
    return vectors, model_id


async def load(
    nats_url: str,
    password: str,
    embed_addr: str,
    retrieve_addr: str,
    tenant: str,
    chunks: list[SampledChunk],
    kept: Path | None,
) -> int:
    vectors, model_id = await vectors_of(embed_addr, [c.text for c in chunks], kept)
    nc = await natsio.connect(nats_url, "ingest", password)  # index events come from ingest's user alone
    js = nc.jetstream()
    subject, last_seq = f"rag.index.{tenant}", 0
    for document, start in enumerate(range(0, len(chunks), CHUNKS_PER_DOCUMENT)):
        doc_id = f"bench-{document}"
        picks = list(range(start, min(start + CHUNKS_PER_DOCUMENT, len(chunks))))
        batch = [
            types_pb2.Chunk(
                chunk_id=chunk_id(tenant, doc_id, 1, ordinal),
                tenant=tenant,
                doc_id=doc_id,
                version=1,
                ordinal=ordinal,
                text=chunks[pick].text,
                title=chunks[pick].title,
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
        last_seq = ack.seq
    await natsio.close(nc)
    async with grpc.aio.insecure_channel(retrieve_addr) as channel:
        stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
        started = time.monotonic()
        while (await stub.GetIndexInfo(retrieve_pb2.GetIndexInfoRequest())).index_watermark < last_seq:
            if time.monotonic() - started > 3600:
                raise TimeoutError("retrieve did not apply the loaded index events within an hour")
            await asyncio.sleep(1)
    return len(chunks)


def bulk_load(bench, tenant: str, abstracts: list[dict], chunks: int, kept: Path | None = None) -> int:
    """`chunks` distinct chunks sampled from `abstracts`, now searchable in `tenant` of the
    BenchSystem `bench`; their vectors are kept in (or taken from) the file `kept` when given."""
    ports = bench.ports
    return asyncio.run(
        load(
            f"nats://127.0.0.1:{ports.grpc('nats')}",
            nats_passwords(bench.system.data)["ingest"],
            ports.addr("embed"),
            ports.addr("retrieve"),
            tenant,
            distinct_chunks(abstracts, chunks),
            kept,
        )
    )
