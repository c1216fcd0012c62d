"""One answer: the answer cache, retrieve -> generate, the manifest, metrics, usage and the audit
event. Search, Ask and Replay all come through here."""

import asyncio
import time
import uuid

import grpc
from opentelemetry import trace
from prometheus_client import Counter

from rag.v1 import events_pb2, gateway_pb2, generate_pb2, retrieve_pb2, types_pb2
from services.common.refusal import Refused
from services.common.telemetry import current_trace_id
from services.common.usage import UsageStore
from services.gateway.audit import AuditLog
from services.gateway.cache import AnswerCache, cache_key
from services.gateway.conversations import Conversations
from services.gateway.downstream import Downstream

QUERIES = Counter(
    "ragmesh_queries_total", "Searches and answers, by tenant, method and status.", ["tenant", "method", "status"]
)
TOKENS = Counter(
    "ragmesh_tokens_total", "Tokens used, by tenant and kind (prompt, completion, embedding).", ["tenant", "kind"]
)
ANSWER_CACHE = Counter("ragmesh_answer_cache_requests_total", "Answer-cache lookups.", ["result"])
COST = Counter("ragmesh_cost_usd_total", "Provider cost in US dollars, by tenant.", ["tenant"])

CHUNKER_VERSION_UNKNOWN = ""


def retrieve_request(caller, query: str, top_k: int, fusion, **scope) -> retrieve_pb2.RetrieveRequest:
    """The caller's tenant and principals always go with a search: retrieve filters on both."""
    return retrieve_pb2.RetrieveRequest(
        tenant=caller.tenant, principals=list(caller.principals), query=query, top_k=top_k, fusion=fusion, **scope
    )


def answer_options(request: gateway_pb2.AskRequest, query: str = "") -> str:
    """Ask parameters besides question, top_k and fusion that change the answer (for the cache key):
    the retrieval gate, and the standalone query a follow-up was condensed into."""
    options = []
    if request.HasField("min_retrieval_score"):
        options.append(f"min_retrieval_score={request.min_retrieval_score}")
    if query and query != request.question:
        options.append(f"query={query}")
    return ",".join(options)


def cited_documents(answer: gateway_pb2.AskFinal) -> list[str]:
    return list(dict.fromkeys(c.doc_id for c in answer.citations))


class Answerer:
    def __init__(
        self,
        retrieve,
        generate,
        downstream: Downstream,
        cache: AnswerCache,
        audit: AuditLog,
        usage: UsageStore,
        conversations: Conversations,
        trace_content: bool = False,
    ) -> None:
        self.retrieve, self.generate, self.downstream = retrieve, generate, downstream
        self.cache, self.audit, self.usage = cache, audit, usage
        self.conversations = conversations
        self.trace_content = trace_content

    async def search(self, caller, request: gateway_pb2.SearchRequest, top_k: int, context):
        asked = retrieve_request(
            caller,
            request.query,
            top_k,
            request.fusion,
            doc_ids=list(request.doc_ids),
            metadata_filters=list(request.metadata_filters),
            date_range=request.date_range,
            generation=request.generation,
        )
        response = await self.downstream.call(context, self.retrieve.Retrieve, asked)
        self.usage.add(caller.tenant, time.time(), queries=1)
        QUERIES.labels(caller.tenant, "search", "ok").inc()
        TOKENS.labels(caller.tenant, "embedding").inc(response.query_tokens)
        return gateway_pb2.SearchResponse(
            query_id=uuid.uuid4().hex,
            hits=response.hits,
            index_watermark=response.index_watermark,
            embedding_model_id=response.embedding_model_id,
            index_generation=response.index_generation,
            dense_skipped=response.dense_skipped,
            generation=response.generation,
            fusion=response.fusion,
        )

    async def _history(self, caller, request: gateway_pb2.AskRequest) -> list[types_pb2.Turn]:
        if request.conversation_id:
            return await self.conversations.turns(caller, request.conversation_id)
        return list(request.history)[-self.conversations.max_turns :]

    async def _condense(self, caller, request, history, context) -> generate_pb2.CondenseResponse:
        """The question as a standalone query (itself when it stands alone or has no history)."""
        if not history:
            return generate_pb2.CondenseResponse(query=request.question)
        condensed = await self.downstream.call(
            context,
            self.generate.Condense,
            generate_pb2.CondenseRequest(history=history, question=request.question, tenant=caller.tenant),
        )
        return condensed

    def _answer_key(self, caller, request, top_k: int, query: str, retrieved) -> str:
        """The answer cache's key: the question and what decides its answer, at the index watermark
        and generation the retrieval saw (no extra call asks retrieve for them)."""
        return cache_key(
            caller.tenant,
            caller.principals,
            request.question,
            top_k,
            request.fusion,
            retrieved.index_watermark,
            retrieved.index_generation or retrieved.embedding_model_id,
            answer_options(request, query),
        )

    def _cached(self, request, key: str) -> gateway_pb2.AskFinal | None:
        if request.no_cache or self.cache.size <= 0:
            return None
        answer = self.cache.get(key)
        ANSWER_CACHE.labels("hit" if answer else "miss").inc()
        return answer

    async def answer(self, caller, request: gateway_pb2.AskRequest, top_k: int, context):
        """Stream one answer: deltas, then the final message (recorded in the audit)."""
        query_id = uuid.uuid4().hex
        started = time.perf_counter()
        span = trace.get_current_span()
        span.set_attribute("rag.query_id", query_id)
        if self.trace_content:
            span.set_attribute("rag.question", request.question)
        history = await self._history(caller, request)
        condensed = await self._condense(caller, request, history, context)
        query = condensed.query or request.question
        span.set_attribute("rag.history_turns", len(history))
        if condensed.method:
            span.set_attribute("rag.condense.method", condensed.method)
        retrieved = await self.downstream.call(
            context, self.retrieve.Retrieve, retrieve_request(caller, query, top_k, request.fusion)
        )
        retrieve_ms = (time.perf_counter() - started) * 1000
        key = self._answer_key(caller, request, top_k, query, retrieved)
        hit = self._cached(request, key)
        if hit is not None:
            answer = gateway_pb2.AskFinal()
            answer.CopyFrom(hit)
            answer.cached = True
            answer.manifest.query_id, answer.manifest.trace_id = query_id, current_trace_id()
            answer.manifest.conversation_id, answer.manifest.history_turns = request.conversation_id, len(history)
            if answer.answer:
                yield gateway_pb2.AskResponse(delta=answer.answer)
            await self._record(caller, request, answer, (time.perf_counter() - started) * 1000)
            await self._remember(caller, request, answer)
            yield gateway_pb2.AskResponse(final=answer)
            return
        generate_request = generate_pb2.GenerateRequest(
            query_id=query_id,
            question=request.question,
            hits=retrieved.hits,
            tenant=caller.tenant,
            dense_skipped=retrieved.dense_skipped,
        )
        if condensed.method:
            generate_request.history.extend(history)
            generate_request.rewritten_query, generate_request.condensed_by = query, condensed.method
        if request.HasField("min_retrieval_score"):
            generate_request.min_retrieval_score = request.min_retrieval_score
        final = None
        stream = self.generate.Generate(generate_request, timeout=self.downstream.timeout(context))
        try:
            async for message in stream:
                if message.HasField("final"):
                    final = message.final
                else:
                    yield gateway_pb2.AskResponse(delta=message.delta)
        except grpc.aio.AioRpcError as exc:
            raise Refused(exc.code(), exc.details()) from None
        except asyncio.CancelledError:  # the client went away: stop the generation it asked for
            stream.cancel()
            raise
        if final is None:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "the generate service ended without an answer")
        total_ms = (time.perf_counter() - started) * 1000
        answer = gateway_pb2.AskFinal(
            answer=final.answer,
            status=final.status,
            abstain_reason=final.abstain_reason,
            confidence=final.confidence,
            citations=final.citations,
            manifest=manifest(query_id, top_k, retrieved, final, retrieve_ms, total_ms),
            notes=final.notes,
        )
        m = answer.manifest
        if condensed.method:
            m.rewritten_query, m.condensed_by = query, condensed.method
            m.usage.prompt_tokens += condensed.usage.prompt_tokens
            m.usage.completion_tokens += condensed.usage.completion_tokens
            m.usage.cost_usd += condensed.usage.cost_usd
        m.conversation_id, m.history_turns = request.conversation_id, len(history)
        self._count(caller, answer)
        await self._record(caller, request, answer, total_ms)
        await self._remember(caller, request, answer)
        if not request.no_cache:
            self.cache.put(key, answer)
        yield gateway_pb2.AskResponse(final=answer)

    async def _remember(self, caller, request: gateway_pb2.AskRequest, answer: gateway_pb2.AskFinal) -> None:
        """A kept conversation gets the turn: question, answer, the query searched, the documents cited."""
        if not request.conversation_id:
            return
        turn = types_pb2.Turn(
            question=request.question,
            answer=answer.answer,
            query=answer.manifest.rewritten_query or request.question,
            cited_doc_ids=cited_documents(answer),
        )
        await self.conversations.append(caller, request.conversation_id, turn)

    def _count(self, caller, answer: gateway_pb2.AskFinal) -> None:
        status_name = types_pb2.AnswerStatus.Name(answer.status).removeprefix("ANSWER_STATUS_").lower()
        QUERIES.labels(caller.tenant, "ask", status_name).inc()
        usage = answer.manifest.usage
        for kind, n in (
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
            ("embedding", usage.embedding_tokens),
        ):
            TOKENS.labels(caller.tenant, kind).inc(n)
        COST.labels(caller.tenant).inc(usage.cost_usd)
        span = trace.get_current_span()
        span.set_attribute("rag.tokens", usage.prompt_tokens + usage.completion_tokens + usage.embedding_tokens)
        span.set_attribute("rag.cost", usage.cost_usd)
        self.usage.add(
            caller.tenant,
            time.time(),
            queries=1,
            llm_tokens=usage.prompt_tokens + usage.completion_tokens,
            cost_usd=usage.cost_usd,
        )

    async def _record(self, caller, request, answer: gateway_pb2.AskFinal, latency_ms: float) -> None:
        await self.audit.record(
            events_pb2.QueryAudit(
                query_id=answer.manifest.query_id,
                tenant=caller.tenant,
                key_id=caller.key_id,
                question=request.question,
                method="Ask",
                manifest=answer.manifest,
                answer=answer.answer,
                status=answer.status,
                abstain_reason=answer.abstain_reason,
                confidence=answer.confidence,
                latency_ms=latency_ms,
                created_unix_ms=int(time.time() * 1000),
                principals=list(caller.principals),
                cached=answer.cached,
            )
        )

    async def replay(self, caller, original: events_pb2.QueryAudit, context) -> gateway_pb2.ReplayResponse:
        """Re-run a logged answer (never from the cache) with the caller's own principals."""
        m = original.manifest
        # A follow-up is replayed as the standalone query it was searched with (its turns may be gone).
        question = m.rewritten_query or original.question
        again = gateway_pb2.AskRequest(question=question, top_k=m.top_k, fusion=m.fusion, no_cache=True)
        final = None
        async for message in self.answer(caller, again, m.top_k, context):
            if message.HasField("final"):
                final = message.final
        changes, reasons = replay_differences(original, final)
        return gateway_pb2.ReplayResponse(original=original, replayed=final, changes=changes, reasons=reasons)


def manifest(query_id: str, top_k: int, retrieved, final, retrieve_ms: float, total_ms: float):
    chunker = retrieved.hits[0].chunk.chunker_version if retrieved.hits else CHUNKER_VERSION_UNKNOWN
    return types_pb2.AnswerManifest(
        query_id=query_id,
        trace_id=current_trace_id(),
        index_watermark=retrieved.index_watermark,
        index_generation=retrieved.index_generation,
        embedding_model_id=retrieved.embedding_model_id,
        chunker_version=chunker,
        prompt_template_version=final.prompt_template_version,
        provider=final.provider,
        provider_model=final.provider_model,
        fusion=retrieved.fusion,
        top_k=top_k,
        hits=retrieved.hits,
        usage=types_pb2.TokenUsage(
            prompt_tokens=final.usage.prompt_tokens,
            completion_tokens=final.usage.completion_tokens,
            embedding_tokens=retrieved.query_tokens,
            cost_usd=final.usage.cost_usd,
        ),
        stage_latency_ms={"retrieve": retrieve_ms, "generate": total_ms - retrieve_ms, "total": total_ms},
        generation_parameters=final.parameters,
        grounding=final.grounding,
        notes=final.notes,
        conflicts=final.conflicts,
        signals=final.signals,
    )


def replay_differences(original: events_pb2.QueryAudit, final: gateway_pb2.AskFinal) -> tuple[list[str], list[str]]:
    """What changed between a logged answer and its re-run, and what moved underneath it."""
    before, after = original.manifest, final.manifest
    old_ids = [h.chunk.chunk_id for h in before.hits]
    new_ids = [h.chunk.chunk_id for h in after.hits]
    changes = []
    if set(old_ids) != set(new_ids):
        changes.append(
            f"retrieved set: {len(set(new_ids) - set(old_ids))} chunks new, {len(set(old_ids) - set(new_ids))} gone"
        )
    elif old_ids != new_ids:
        changes.append("ranks changed within the same retrieved set")
    if original.answer != final.answer:
        changes.append("answer text changed")
    if original.status != final.status:
        changes.append(
            f"status {types_pb2.AnswerStatus.Name(original.status)} -> {types_pb2.AnswerStatus.Name(final.status)}"
        )
    reasons = []
    if before.index_watermark != after.index_watermark:
        reasons.append(f"index watermark moved {before.index_watermark} -> {after.index_watermark}")
    for label, a, b in (
        ("index generation", before.index_generation, after.index_generation),
        ("embedding model", before.embedding_model_id, after.embedding_model_id),
        ("chunker", before.chunker_version, after.chunker_version),
        ("prompt template", before.prompt_template_version, after.prompt_template_version),
        ("provider", before.provider, after.provider),
        ("provider model", before.provider_model, after.provider_model),
    ):
        if a and b and a != b:
            reasons.append(f"{label} changed {a} -> {b}")
    return changes, reasons
