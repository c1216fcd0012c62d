"""Changes to which index generations exist and which one serves: create, evaluate's verdict,
promote (behind a passing verdict or an operator's recorded force), roll back, drop, and the
listing. Every change is one compare-and-set on the shared pointer (services/retrieve/generations.py)."""

import asyncio
import time

import grpc

from rag.v1 import retrieve_pb2, types_pb2
from services.retrieve.generations import GenerationError, Generations
from services.retrieve.reembed import ModelNotServed


class GenerationControl:
    def __init__(self, generations: Generations) -> None:
        self.g = generations

    async def create(
        self, reason: str, rechunk: bool = False, chunking: types_pb2.Chunking | None = None, model: str = ""
    ) -> retrieve_pb2.GenerationRecord:
        rechunk = rechunk or bool(chunking)
        model_id = await self._model(model, rechunk) if model else self.g.get().state.model_id
        record = retrieve_pb2.GenerationRecord(
            created_unix_ms=int(time.time() * 1000),
            replay_until=await self.g.stream_last(),
            reason=reason,
            rechunk=rechunk,
            embedding_model_id=model_id,
        )
        if chunking is not None:
            record.chunking.CopyFrom(chunking)

        def change(pointer):
            record.number = next_number(pointer)
            pointer.last_number = record.number
            pointer.generations.append(record)

        await self.g.change(change)
        return record

    async def _model(self, asked: str, rechunk: bool) -> str:
        """The id of the served model `asked` names (its id or name), for a new generation."""
        if rechunk:
            raise GenerationError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "a re-chunk embeds with ingestion's model: rebuild with another embedding model separately",
            )
        if self.g.reembedder is None:
            raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, "this replica cannot embed chunks again")
        try:
            info = await self.g.reembedder.resolve(asked)
        except ModelNotServed as exc:
            raise GenerationError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        self.g.dimensions[info.model_id] = info.dimension
        return info.model_id

    async def record_verdict(self, number: int, verdict: retrieve_pb2.Verdict) -> None:
        def change(pointer):
            for record in pointer.generations:
                if record.number == number:
                    record.verdict.CopyFrom(verdict)

        await self.g.change(change)

    async def _check_promotable(self, number: int, expected_active: int, force: bool) -> None:
        if expected_active and expected_active != self.g.pointer.active:
            raise GenerationError(
                grpc.StatusCode.ABORTED,
                f"generation {self.g.pointer.active} is active now, not {expected_active}: evaluate again",
            )
        if number == self.g.pointer.active:
            raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, f"generation {number} is already active")
        generation = self.g.get(number)
        if not generation.caught_up:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"generation {number} is still applying the index stream ({generation.progress()})",
            )
        missing = missing_documents(await self.g.get().state.versions(), await generation.state.versions())
        if missing:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"generation {number} does not show {missing} of the active generation's documents yet "
                "(it is still applying events or re-chunking; failed re-chunks are in the dead-letter stream)",
            )
        if force:
            return
        verdict = generation.record.verdict
        if not verdict.created_unix_ms or verdict.baseline != self.g.pointer.active:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"generation {number} has no evaluation against the active generation {self.g.pointer.active}: "
                "evaluate it first (EvaluateIndex), or force the promotion as an operator",
            )
        if not verdict.passed:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION, f"generation {number} failed its evaluation: {verdict.summary}"
            )

    async def promote(
        self, number: int, expected_active: int, note: str, force: bool = False, actor: str = ""
    ) -> retrieve_pb2.IndexPointer:
        await self._check_promotable(number, expected_active, force)
        verdict = self.g.get(number).record.verdict
        if force:
            reason = f"forced by {actor or 'an operator'} without a passing evaluation"
        else:
            reason = f"evaluation passed: {verdict.summary}"
        text = f"{reason}; {note}" if note else reason

        def change(pointer):
            if expected_active and pointer.active != expected_active:
                raise GenerationError(grpc.StatusCode.ABORTED, f"generation {pointer.active} became active meanwhile")
            pointer.previous, pointer.active, pointer.note = pointer.active, number, text

        return await self.g.change(change)

    async def rollback(self) -> retrieve_pb2.IndexPointer:
        previous = self.g.pointer.previous
        if not previous or previous not in {r.number for r in self.g.pointer.generations}:
            raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, "there is no previous generation to return to")

        def change(pointer):
            pointer.previous, pointer.active, pointer.note = pointer.active, pointer.previous, "rolled back"

        return await self.g.change(change)

    async def drop(self, number: int) -> retrieve_pb2.IndexPointer:
        self.g.get(number)
        if number == self.g.pointer.active:
            raise GenerationError(
                grpc.StatusCode.FAILED_PRECONDITION, f"generation {number} is active: promote another first"
            )

        def change(pointer):
            kept = [r for r in pointer.generations if r.number != number]
            del pointer.generations[:]
            pointer.generations.extend(kept)
            if pointer.previous == number:
                pointer.previous = 0

        return await self.g.change(change)

    async def describe(self) -> list[retrieve_pb2.GenerationInfo]:
        infos = []
        writer = await self.g.lease.holder_now() if self.g.lease is not None else ""
        active = self.g.open.get(self.g.pointer.active)
        reference = await active.state.versions() if active else {}
        for number, g in sorted(self.g.open.items()):
            versions = reference if g is active else await g.state.versions()
            infos.append(
                retrieve_pb2.GenerationInfo(
                    record=g.record,
                    index_generation=g.state.generation,
                    active=number == self.g.pointer.active,
                    previous=number == self.g.pointer.previous,
                    index_watermark=g.state.watermark,
                    lag=g.lag or 0,
                    dense_points=await asyncio.to_thread(g.dense.count),
                    lexical_documents=await asyncio.to_thread(g.lexical.count),
                    embedding_model_id=g.state.model_id,
                    documents=len(versions),
                    missing_documents=missing_documents(reference, versions),
                    caught_up=g.caught_up,
                    writer=writer,
                )
            )
        return infos


def missing_documents(reference: dict, candidate: dict) -> int:
    """Documents `reference` shows that `candidate` does not show at the same version."""
    return sum(1 for key, version in reference.items() if candidate.get(key) != version)


def next_number(pointer: retrieve_pb2.IndexPointer) -> int:
    """Numbers only grow: never one a dropped generation had."""
    return max([pointer.last_number, *(r.number for r in pointer.generations)]) + 1
