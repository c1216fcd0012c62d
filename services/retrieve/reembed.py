"""Vectors of a generation's own embedding model for chunks whose vectors came from another one.

A generation built with another model (`ragmesh index rebuild --model`) starts from the active
generation's chunks, re-embedded from their text, and re-embeds the upserts of index events that
ingestion embedded with another model before it applies them. The text embedded is the one
ingestion embedded: the chunk's title and section trail, then its text.
"""

import asyncio
from collections.abc import Sequence

import grpc
from prometheus_client import Counter

from rag.v1 import embed_pb2, events_pb2, types_pb2

REEMBEDDED = Counter(
    "ragmesh_index_reembedded_chunks_total",
    "Chunks re-embedded with a generation's own model, by where they came from.",
    ["source"],
)

BATCH = 64  # texts per Embed call
IN_FLIGHT = 4  # calls at once: the embed service's bulk workers batch them side by side
OVERLOAD_RETRIES = 40


class ModelNotServed(Exception):
    """The embed service does not serve the model asked for."""


def embedding_text(chunk: types_pb2.Chunk) -> str:
    """What ingestion embedded for a chunk (the chunker's `embed_text`)."""
    trail = [part for part in (chunk.title, *(chunk.section.split(" > ") if chunk.section else ())) if part]
    prefix = " > ".join(dict.fromkeys(trail))
    return f"{prefix}\n{chunk.text}" if prefix else chunk.text


class Reembedder:
    def __init__(self, embed, timeout: float = 120.0) -> None:
        self.embed, self.timeout = embed, timeout

    async def models(self) -> list[embed_pb2.ModelInfo]:
        info = await self.embed.GetModelInfo(embed_pb2.GetModelInfoRequest(), timeout=30)
        return list(info.models)

    async def resolve(self, asked: str) -> embed_pb2.ModelInfo:
        """The served model `asked` names (its id or its name)."""
        served = await self.models()
        found = next((m for m in served if asked in (m.model_id, m.name)), None)
        if found is None:
            ids = ", ".join(m.model_id for m in served)
            raise ModelNotServed(f"embedding model {asked[:200]!r} is not served by the embed service; it serves {ids}")
        return found

    async def vectors(self, chunks: Sequence[types_pb2.Chunk], model_id: str, source: str) -> list[list[float]]:
        """One vector per chunk, in order, from model `model_id`."""
        texts = [embedding_text(c) for c in chunks]
        parts = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
        limit = asyncio.Semaphore(IN_FLIGHT)

        async def one(part: list[str]) -> list[list[float]]:
            async with limit:
                return await self._embed(part, model_id)

        vectors = [v for rows in await asyncio.gather(*(one(p) for p in parts)) for v in rows]
        REEMBEDDED.labels(source).inc(len(vectors))
        return vectors

    async def _embed(self, texts: list[str], model_id: str) -> list[list[float]]:
        request = embed_pb2.EmbedRequest(texts=texts, lane=embed_pb2.EMBED_LANE_BULK, model_id=model_id)
        for _ in range(OVERLOAD_RETRIES):
            try:
                reply = await self.embed.Embed(request, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "not served" in (exc.details() or ""):
                    raise ModelNotServed(exc.details()) from None
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                hint = dict(exc.trailing_metadata() or ()).get("retry-after-ms", "500")
                await asyncio.sleep(int(hint) / 1000)
                continue
            if reply.model_id != model_id:
                raise ModelNotServed(f"asked for vectors of {model_id}, the embed service answered {reply.model_id}")
            return [list(v.values) for v in reply.vectors]
        raise RuntimeError("the embed service stayed overloaded")

    async def events(
        self, events: Sequence[events_pb2.IndexBatch], model_id: str, embed: bool = True
    ) -> list[events_pb2.IndexBatch]:
        """The events as if ingestion had embedded them with `model_id`: their upserts embedded
        again (all in one go), or (`embed` off) only relabelled."""
        moved = []
        for event in events:
            copy = events_pb2.IndexBatch()
            copy.CopyFrom(event)
            copy.embedding_model_id = model_id
            moved.append(copy)
        upserts = [e for e in moved if embed and e.WhichOneof("op") == "upserts" and e.upserts.chunks]
        if not upserts:
            await self.resolve(model_id)  # relabelled only while the model is served
            return moved
        rows = await self.vectors([c for e in upserts for c in e.upserts.chunks], model_id, "stream")
        start = 0
        for event in upserts:
            mine = rows[start : start + len(event.upserts.chunks)]
            start += len(mine)
            del event.upserts.vectors[:]
            event.upserts.vectors.extend(v for row in mine for v in row)
            event.upserts.dimension = len(mine[0])
        return moved
