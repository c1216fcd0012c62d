"""An index generation of another embedding model, with a real nats-server, Qdrant Edge, Tantivy and
the real embed service serving both ONNX models: it starts from the active generation's chunks
embedded again from their text, re-embeds index events ingestion embedded with the other model,
and the active generation keeps its own vectors throughout."""

import asyncio

import grpc
import numpy as np
import pytest
from helpers import embed_service

from rag.v1 import embed_pb2_grpc, events_pb2, retrieve_pb2, types_pb2
from services.common import natsio
from services.common.config import RetrieveSettings
from services.common.ids import chunk_id
from services.common.tokenizer import packaged_tokenizer_path
from services.embed.catalogue import INT8, KNOWN, PACKAGED, known_model_path
from services.embed.model import EmbeddingModel
from services.retrieve.backends.qdrant_edge import QdrantEdgeIndex
from services.retrieve.backends.tantivy_index import TantivyIndex
from services.retrieve.consumer import IndexConsumer
from services.retrieve.control import GenerationControl
from services.retrieve.generations import GenerationError, Generations
from services.retrieve.reembed import REEMBEDDED, Reembedder, embedding_text
from services.retrieve.state import LocalState

from .test_index_consumer import publish

PACKAGED_ID, INT8_ID = (f"{name}@sha256:{KNOWN[name].sha256}" for name in (PACKAGED, INT8))
DIMENSION = 384


@pytest.fixture(scope="module")
async def embed_addr():
    async with embed_service(models=f"{PACKAGED},{INT8}") as addr:
        yield addr


@pytest.fixture(scope="module")
def models():
    loaded = {}
    for name, model_id in ((PACKAGED, PACKAGED_ID), (INT8, INT8_ID)):
        model = EmbeddingModel(known_model_path(name), packaged_tokenizer_path(), name, one_text_per_run=name == INT8)
        model.load()
        loaded[model_id] = model
    return loaded


@pytest.fixture
async def control(nats_server, tmp_path, embed_addr):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    channel = grpc.aio.insecure_channel(embed_addr)
    settings = RetrieveSettings(index_dir=tmp_path, ready_max_lag=0, generation_poll_seconds=0.2, instance="r1")
    reembedder = Reembedder(embed_pb2_grpc.EmbedServiceStub(channel))
    generations = Generations(settings, tmp_path, DIMENSION, "r1", reembedder, {PACKAGED_ID: DIMENSION})
    await generations.start(js)
    yield js, GenerationControl(generations), models
    await generations.stop()
    await channel.close()
    await nc.close()


def document(doc: str, version: int, texts: list[str], model: EmbeddingModel, model_id: str, title: str = ""):
    """Upserts and activation of one version, embedded as ingestion embeds (title and section first)."""
    chunks = [
        types_pb2.Chunk(
            chunk_id=chunk_id("t1", doc, version, i),
            tenant="t1",
            doc_id=doc,
            version=version,
            ordinal=i,
            text=text,
            title=title,
            section=f"{title} > Part {i}" if title else "",
        )
        for i, text in enumerate(texts)
    ]
    vectors = model.embed([embedding_text(c) for c in chunks])
    fields = events_pb2.DocumentFields(title=title, acl=["public"], revision=version)
    upserts = events_pb2.ChunkUpserts(
        chunks=chunks, vectors=vectors.ravel().tolist(), dimension=DIMENSION, version=version, fields=fields
    )
    return (
        events_pb2.IndexBatch(tenant="t1", doc_id=doc, embedding_model_id=model_id, upserts=upserts),
        events_pb2.IndexBatch(
            tenant="t1",
            doc_id=doc,
            embedding_model_id=model_id,
            job_id=f"job-{doc}-{version}",
            activate=events_pb2.ActivateVersion(version=version, chunk_count=len(chunks)),
        ),
    )


def removal(doc: str, through: int) -> events_pb2.IndexBatch:
    return events_pb2.IndexBatch(
        tenant="t1", doc_id=doc, remove=events_pb2.RemoveDocumentChunks(through_version=through)
    )


def held(generation) -> dict[str, tuple[int, bool, np.ndarray, types_pb2.Chunk]]:
    """Every chunk a generation stores: version, liveness, vector, the chunk."""
    return {
        chunk.chunk_id: (chunk.version, live, np.asarray(vector, dtype=np.float32), chunk)
        for entries in generation.dense.export()
        for chunk, vector, live in entries
    }


async def until(check, polls: int = 2400):
    """Until `check()` holds, polling every 50 ms (2 minutes at most)."""
    for _ in range(polls):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def counted(source: str) -> float:
    return REEMBEDDED.labels(source)._value.get()


async def test_a_generation_of_another_model_is_embedded_again_from_chunk_text(control, models):
    js, ctl, _ = control
    packaged = models[PACKAGED_ID]
    events = [
        *document(
            "d1", 1, ["Otters hold hands while they sleep.", "They eat sea urchins."], packaged, PACKAGED_ID, "Otters"
        ),
        *document("d2", 1, ["Glaciers carve valleys."], packaged, PACKAGED_ID),
        *document("d2", 2, ["Glaciers carve U-shaped valleys into bedrock."], packaged, PACKAGED_ID),
        *document("d3", 1, ["Lighthouses guide ships."], packaged, PACKAGED_ID),
        removal("d3", 1),
    ]
    last = await publish(js, *events)
    active = ctl.g.get()
    await until(lambda: active.state.watermark >= last)
    before = held(active)
    assert {k: (v, live) for k, (v, live, _, _) in before.items()} == {
        chunk_id("t1", "d1", 1, 0): (1, True),
        chunk_id("t1", "d1", 1, 1): (1, True),
        chunk_id("t1", "d2", 2, 0): (2, True),
    }

    unknown = await asyncio.gather(ctl.create("another", model="all-MiniLM-L12-v2"), return_exceptions=True)
    assert isinstance(unknown[0], GenerationError) and unknown[0].code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(unknown[0]) == (
        f"embedding model 'all-MiniLM-L12-v2' is not served by the embed service; it serves {PACKAGED_ID}, {INT8_ID}"
    )
    with pytest.raises(GenerationError, match="a re-chunk embeds with ingestion's model") as both:
        await ctl.create("both", chunking=types_pb2.Chunking(target_tokens=48, overlap_tokens=8), model=INT8)
    assert both.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [r.number for r in ctl.g.pointer.generations] == [1]

    seeded = counted("seed")
    record = await ctl.create("int8", model=INT8)
    assert record.embedding_model_id == INT8_ID
    candidate = ctl.g.get(record.number)
    await until(lambda: candidate.caught_up and candidate.consumer is not None)
    assert counted("seed") - seeded == 3
    assert candidate.state.model_id == INT8_ID and candidate.state.generation.startswith(f"g2/{INT8}@8f948091/")
    assert await candidate.state.all_states() == await active.state.all_states()  # d3's tombstone too

    int8 = models[INT8_ID]
    rebuilt = held(candidate)
    assert {k: (v, live) for k, (v, live, _, _) in rebuilt.items()} == {
        k: (v, live) for k, (v, live, _, _) in before.items()
    }
    for key, (_, _, vector, chunk) in rebuilt.items():
        assert np.allclose(vector, int8.embed([embedding_text(chunk)])[0], atol=1e-5), key
        assert not np.allclose(vector, before[key][2], atol=1e-3), key
    for key, (_, _, vector, chunk) in held(active).items():  # the active generation keeps its own
        assert np.allclose(vector, packaged.embed([embedding_text(chunk)])[0], atol=1e-5), key

    # Ingestion goes on embedding with the default model: a new document, a changed one and a
    # deletion reach both generations, each in its own model's vectors.
    streamed = counted("stream")
    last = await publish(
        js,
        *document("d4", 1, ["Narwhal tusks grow in a spiral."], packaged, PACKAGED_ID),
        *document(
            "d1", 2, ["Otters use rocks as tools.", "They groom their fur.", "Pups float."], packaged, PACKAGED_ID
        ),
        removal("d2", 2),
    )
    await until(lambda: candidate.state.watermark >= last and active.state.watermark >= last)
    assert counted("stream") - streamed == 4
    expected = {chunk_id("t1", "d4", 1, 0): 1, **{chunk_id("t1", "d1", 2, i): 2 for i in range(3)}}
    for generation, model in ((active, packaged), (candidate, int8)):
        live = {k: (v, vector, chunk) for k, (v, is_live, vector, chunk) in held(generation).items() if is_live}
        assert {k: v for k, (v, _, _) in live.items()} == expected, generation.number
        for key, (_, vector, chunk) in live.items():
            assert np.allclose(vector, model.embed([embedding_text(chunk)])[0], atol=1e-5), (generation.number, key)
    assert candidate.state.model_id == INT8_ID and active.state.model_id == PACKAGED_ID
    assert await candidate.state.versions() == await active.state.versions()


class HeldEmbed:
    """The real embed service's stub, whose `held`-th Embed call waits until released, then fails
    (`fail`: as a service that went away in the middle of a request would) or goes through."""

    def __init__(self, stub, held: int, fail: bool) -> None:
        self.stub, self.held, self.fail, self.calls = stub, held, fail, 0
        self.reached, self.release = asyncio.Event(), asyncio.Event()

    async def Embed(self, request, **options):
        self.calls += 1
        if self.calls == self.held:
            self.reached.set()
            await self.release.wait()
            if self.fail:
                raise ConnectionError("the embed service went away")
        return await self.stub.Embed(request, **options)

    def __getattr__(self, name):
        return getattr(self.stub, name)


@pytest.fixture
async def held_control(nats_server, tmp_path, embed_addr, models, request):
    """Generations whose re-embedding is held at its fifth Embed call: parts of 256 chunks, 64 per
    call, so calls 1-4 embed the first part and call 5 the rest. 30 documents of 10 chunks."""
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)
    channel = grpc.aio.insecure_channel(embed_addr)
    embed = HeldEmbed(embed_pb2_grpc.EmbedServiceStub(channel), held=5, fail=request.param)
    settings = RetrieveSettings(index_dir=tmp_path, ready_max_lag=0, generation_poll_seconds=0.2, instance="r1")
    generations = Generations(settings, tmp_path, DIMENSION, "r1", Reembedder(embed), {PACKAGED_ID: DIMENSION})
    await generations.start(js)
    ctl = GenerationControl(generations)
    texts = [
        f"Harbour log {d}, entry {i}: the ferry left at {i % 12 + 1} o'clock." for d in range(30) for i in range(10)
    ]
    vectors = iter(models[PACKAGED_ID].embed(texts))
    events = []
    for d in range(30):
        upsert, activation = document(f"d{d}", 1, texts[d * 10 : d * 10 + 10], models[PACKAGED_ID], PACKAGED_ID)
        del upsert.upserts.vectors[:]  # the same vectors, embedded in one go
        upsert.upserts.vectors.extend(v for _ in range(10) for v in next(vectors))
        events += [upsert, activation]
    last = await publish(js, *events)
    await until(lambda: ctl.g.get().state.watermark >= last)
    yield js, ctl, embed
    embed.release.set()
    await generations.stop()
    await channel.close()
    await nc.close()


@pytest.mark.parametrize("held_control", [True], indirect=True)
async def test_an_interrupted_start_begins_again_from_empty_engines(held_control, models):
    """The embed service fails half way through the re-embedding (the first 256 chunks written, the
    rest not); a document deleted before the next attempt is not in the new generation after it."""
    js, ctl, embed = held_control
    active = ctl.g.get()
    record = await ctl.create("int8", model=INT8)
    candidate = ctl.g.get(record.number)
    await asyncio.wait_for(embed.reached.wait(), 120)
    written = held(candidate)
    assert len(written) == 256 and candidate.state.watermark == 0 and not candidate.caught_up
    doomed = next(iter(written.values()))[3].doc_id
    removed = await publish(js, removal(doomed, 1))
    await until(lambda: active.state.watermark >= removed)
    assert doomed not in {chunk.doc_id for _, _, _, chunk in held(active).values()}
    embed.release.set()

    await until(lambda: candidate.caught_up and candidate.consumer is not None)
    rebuilt, source = held(candidate), held(active)
    assert len(source) == 290 and set(rebuilt) == set(source)
    assert doomed not in {chunk.doc_id for _, _, _, chunk in rebuilt.values()}
    for key, (_, live, vector, chunk) in rebuilt.items():
        assert live and np.allclose(vector, models[INT8_ID].embed([embedding_text(chunk)])[0], atol=1e-5), key
    assert await candidate.state.all_states() == await active.state.all_states()


@pytest.mark.parametrize("held_control", [False], indirect=True)
async def test_changes_while_chunks_are_embedded_again_apply_after_from_the_read_watermark(held_control, models):
    """The active generation applies the stream while the new one's chunks are embedded again; the
    new one then applies the same events from the watermark it read at: a new document (of the
    default model, embedded again), a changed one and a deleted one."""
    js, ctl, embed = held_control
    active = ctl.g.get()
    read_at = active.state.watermark
    record = await ctl.create("int8", model=INT8)
    candidate = ctl.g.get(record.number)
    await asyncio.wait_for(embed.reached.wait(), 120)
    packaged = models[PACKAGED_ID]
    last = await publish(
        js,
        *document("n1", 1, ["Narwhal tusks grow in a spiral."], packaged, PACKAGED_ID),
        *document("d0", 2, ["The harbour closed for the winter.", "Ferries moved south."], packaged, PACKAGED_ID),
        removal("d1", 1),
    )
    await until(lambda: active.state.watermark >= last)
    assert candidate.state.watermark == 0 and candidate.consumer is None
    embed.release.set()

    await until(lambda: candidate.caught_up and candidate.consumer is not None and candidate.state.watermark >= last)
    source = {k: v for k, v in held(active).items() if v[1]}
    rebuilt = {k: v for k, v in held(candidate).items() if v[1]}
    assert set(rebuilt) == set(source) and len(source) == 300 - 10 - 10 + 1 + 2
    docs = {chunk.doc_id for _, _, _, chunk in rebuilt.values()}
    assert "n1" in docs and "d1" not in docs
    assert sorted(v for v, _, _, c in rebuilt.values() if c.doc_id == "d0") == [2, 2]
    for key, (_, _, vector, chunk) in rebuilt.items():
        assert np.allclose(vector, models[INT8_ID].embed([embedding_text(chunk)])[0], atol=1e-5), key
    assert await candidate.state.all_states() == await active.state.all_states()
    assert read_at < last


async def test_events_of_another_model_are_refused_while_the_generations_own_is_not_served(
    nats_server, tmp_path, models
):
    """Nothing of another model's vectors enters a generation: without its own model to embed them
    again, the document is announced failed, as before re-embedding existed."""
    async with embed_service() as addr:  # the packaged model alone
        nc = await natsio.connect(nats_server.url, "test")
        js = nc.jetstream()
        await natsio.ensure_all(js)
        channel = grpc.aio.insecure_channel(addr)
        dense, lexical = QdrantEdgeIndex(tmp_path / "dense", DIMENSION), TantivyIndex(tmp_path / "lexical")
        state = LocalState(tmp_path / "state.db", 2)
        for part in (dense, lexical, state):
            part.open()
        record = retrieve_pb2.GenerationRecord(number=2, embedding_model_id=INT8_ID)
        reembedder = Reembedder(embed_pb2_grpc.EmbedServiceStub(channel))
        consumer = IndexConsumer(js, dense, lexical, state, "test-g2", record=record, reembedder=reembedder)
        await consumer.start()
        failed = await js.subscribe("rag.events.failed.>")
        try:
            upsert, activation = document("d1", 1, ["Otters hold hands."], models[PACKAGED_ID], PACKAGED_ID)
            # Apart: the activation, with no vectors to embed, is refused on its own too.
            for event in (upsert, activation):
                last = await publish(js, event)
                await until(lambda last=last: state.watermark >= last)
            assert dense.count() == lexical.count() == 0 and state.model_id == INT8_ID
            refusal = events_pb2.DocumentFailed.FromString((await failed.next_msg(timeout=30)).data)
            assert (refusal.doc_id, refusal.version, refusal.error) == (
                "d1",
                1,
                f"embedded by {PACKAGED_ID}, the index holds {INT8_ID}",
            )
        finally:
            await consumer.stop()
            for part in (dense, lexical, state):
                part.close()
            await channel.close()
            await nc.close()
