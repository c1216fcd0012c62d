"""Gateway: the only public API. Authenticates, routes, orchestrates search -> generate, audits."""

import asyncio
import contextvars
import dataclasses
import inspect
import json
import logging
import math
import time
import uuid

import grpc
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError
from opentelemetry import trace
from prometheus_client import Counter

from rag.v1 import (
    events_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    generate_pb2,
    generate_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    retrieve_pb2,
    retrieve_pb2_grpc,
    types_pb2,
)
from services.common import natsio
from services.common.clients import channel
from services.common.config import GatewaySettings
from services.common.ids import valid_doc_id, valid_tenant
from services.common.server import Service, run
from services.common.telemetry import current_trace_id
from services.common.usage import UsageStore
from services.gateway.auth import METHOD_ROLES, KeyStore, allowed, key_from_metadata, key_hash, new_key, role_name
from services.gateway.cache import AnswerCache, cache_key
from services.gateway.limits import Governor, LimitExceeded, TenantLimits, check_budgets

log = logging.getLogger(__name__)
tracer = trace.get_tracer("ragmesh.gateway")

QUERIES = Counter(
    "ragmesh_queries_total", "Searches and answers, by tenant, method and status.", ["tenant", "method", "status"]
)
TOKENS = Counter(
    "ragmesh_tokens_total", "Tokens used, by tenant and kind (prompt, completion, embedding).", ["tenant", "kind"]
)
# The gateway method being served (each RPC runs in its own task, so its own context).
CURRENT_METHOD: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_method", default="")
ANSWER_CACHE = Counter("ragmesh_answer_cache_requests_total", "Answer-cache lookups.", ["result"])
COST = Counter("ragmesh_cost_usd_total", "Provider cost in US dollars, by tenant.", ["tenant"])

CHUNKER_VERSION_UNKNOWN = ""
MODEL_MAX_TOKENS = 256  # all-MiniLM-L6-v2's input limit: no chunk may be larger


class Downstream(Exception):
    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.error = error


def chunking_problem(chunking: types_pb2.Chunking) -> str:
    """Why chunk sizes cannot be used, or "" when they can."""
    if not 16 <= chunking.target_tokens <= MODEL_MAX_TOKENS:
        return f"chunking.target_tokens must be 16-{MODEL_MAX_TOKENS} (the embedding model's limit)"
    if chunking.overlap_tokens > chunking.target_tokens // 2:
        return "chunking.overlap_tokens may be at most half of target_tokens"
    return ""


class GatewayService(Service, gateway_pb2_grpc.GatewayServiceServicer):
    name = "gateway"

    def register(self, server):
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(self, server)
        return [gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name]

    async def start(self) -> None:
        s: GatewaySettings = self.settings
        self.nc = await natsio.connect(s.nats_url, "gateway")
        self.js = self.nc.jetstream()
        await natsio.ensure_all(self.js, self.settings.nats_replicas, self.settings.index_retention_days)
        await natsio.ensure_stream(
            self.js,
            dataclasses.replace(
                natsio.STREAM_AUDIT, max_age=s.audit_retention_days * 86400, num_replicas=s.nats_replicas
            ),
        )
        self.keys = KeyStore(self.js, await self.js.key_value(natsio.KV_KEYS), cache_seconds=s.key_cache_seconds)
        self.usage = UsageStore(await self.js.key_value(natsio.KV_USAGE), s.usage_flush_seconds)
        self.usage.start()
        self.answers = await natsio.ensure_bucket(
            self.js,
            KeyValueConfig(
                bucket=natsio.KV_ANSWERS,
                ttl=s.audit_retention_days * 86400,
                storage=StorageType.FILE,
                replicas=s.nats_replicas,
            ),
        )
        self.cache = AnswerCache(s.answer_cache_size, s.answer_cache_ttl_seconds)
        self.deadlines = {k: float(v) for k, v in json.loads(s.method_deadlines or "{}").items()}
        self.governor = Governor(TenantLimits.parse(s.tenant_limits))
        if s.bootstrap_key_sha256:
            await self.keys.ensure(
                s.bootstrap_key_sha256, "default", ["admin"], gateway_pb2.ROLE_ADMIN, "bootstrap admin key"
            )
        self.ingest = ingest_pb2_grpc.IngestServiceStub(channel(s.ingest_addr, self.settings))
        self.retrieve = retrieve_pb2_grpc.RetrieveServiceStub(channel(s.retrieve_addr, self.settings))
        self.generate = generate_pb2_grpc.GenerateServiceStub(channel(s.generate_addr, self.settings))

    async def stop(self) -> None:
        await self.usage.stop()
        await natsio.close(self.nc)

    # -- helpers -------------------------------------------------------------------------------

    async def _caller(self, context, method: str) -> gateway_pb2.ApiKeyRecord:
        CURRENT_METHOD.set(method)
        record, problem = await self.keys.lookup(key_from_metadata(context.invocation_metadata()))
        if record is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)
        if not allowed(record.role, method):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} needs a {role_name(METHOD_ROLES[method])} key; this key is {role_name(record.role)}",
            )
        trace.get_current_span().set_attribute("rag.tenant", record.tenant)
        return record

    async def _governed(self, context, check) -> None:
        """Run a limit check; a spent limit becomes RESOURCE_EXHAUSTED naming it, with a retry hint."""
        try:
            result = check()
            if inspect.isawaitable(result):
                await result
        except LimitExceeded as exc:
            wait_ms = max(1, math.ceil(exc.retry_after_s * 1000))  # never "retry in 0 ms"
            context.set_trailing_metadata((("retry-after-ms", str(wait_ms)),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    async def _budget(self, tenant: str, kind: str) -> None:
        now = time.time()
        today, month = await self.usage.get(tenant, now)
        check_budgets(self.governor.for_tenant(tenant), today, month, now, kind)

    def _timeout(self, context) -> float:
        """The client's remaining deadline, or the method's default: every downstream call gets one."""
        remaining = context.time_remaining()
        default = self.deadlines.get(CURRENT_METHOD.get(), self.settings.request_timeout_seconds)
        return default if remaining is None else max(0.001, min(remaining, default * 10))

    async def _call(self, context, rpc, request):
        try:
            return await rpc(request, timeout=self._timeout(context))
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details())

    async def _check_query(self, context, text: str, top_k: int) -> int:
        s = self.settings
        if not text.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the question is empty")
        if len(text) > s.max_question_chars:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the question has {len(text)} characters; the limit is {s.max_question_chars}",
            )
        if top_k > s.max_top_k:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"top_k {top_k} is above the limit {s.max_top_k}")
        return top_k or s.default_top_k

    # -- documents -----------------------------------------------------------------------------

    async def IngestDocument(self, request_iterator, context):
        caller = await self._caller(context, "IngestDocument")
        await self._governed(context, lambda: self.governor.check_ingest(caller.tenant))
        await self._governed(context, lambda: self._budget(caller.tenant, "embedding"))
        limit = self.settings.max_document_bytes
        header, parts, size = None, [], 0
        async for message in request_iterator:
            if message.HasField("header"):
                if header is not None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the header was sent twice")
                header = message.header
            else:
                if header is None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "send the header before the data")
                size += len(message.data)
                if size > limit:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED, f"the document is larger than the limit of {limit} bytes"
                    )
                parts.append(message.data)
        if header is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no header: the first message names the document")
        if not valid_doc_id(header.doc_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "doc_id must be 1-512 printable characters")
        problem = header_problem(header)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        response = await self._call(
            context,
            self.ingest.Submit,
            ingest_pb2.SubmitRequest(
                tenant=caller.tenant,
                doc_id=header.doc_id,
                title=header.title,
                source_name=header.source_name,
                content_type=header.content_type,
                acl=list(header.acl),
                metadata=dict(header.metadata),
                content=b"".join(parts),
                password=header.password,
            ),
        )
        if not response.deduplicated:
            self.usage.add(caller.tenant, time.time(), documents=1)
        return gateway_pb2.IngestDocumentResponse(
            job_id=response.job_id,
            doc_id=response.doc_id,
            version=response.version,
            deduplicated=response.deduplicated,
            content_sha256=response.content_sha256,
            metadata_updated=response.metadata_updated,
        )

    async def GetJob(self, request, context):
        caller = await self._caller(context, "GetJob")
        response = await self._call(
            context,
            self.ingest.GetIngestJob,
            ingest_pb2.GetIngestJobRequest(tenant=caller.tenant, job_id=request.job_id),
        )
        return gateway_pb2.GetJobResponse(job=response.job)

    async def GetDocument(self, request, context):
        caller = await self._caller(context, "GetDocument")
        response = await self._call(
            context,
            self.ingest.GetDocumentRecord,
            ingest_pb2.GetDocumentRecordRequest(tenant=caller.tenant, doc_id=request.doc_id),
        )
        return gateway_pb2.GetDocumentResponse(document=response.document)

    async def ListDocuments(self, request, context):
        caller = await self._caller(context, "ListDocuments")
        response = await self._call(
            context,
            self.ingest.ListDocumentRecords,
            ingest_pb2.ListDocumentRecordsRequest(tenant=caller.tenant, include_deleted=request.include_deleted),
        )
        return gateway_pb2.ListDocumentsResponse(documents=response.documents)

    async def DeleteDocument(self, request, context):
        caller = await self._caller(context, "DeleteDocument")
        response = await self._call(
            context,
            self.ingest.RemoveDocument,
            ingest_pb2.RemoveDocumentRequest(tenant=caller.tenant, doc_id=request.doc_id),
        )
        return gateway_pb2.DeleteDocumentResponse(document=response.document)

    async def RetryDocument(self, request, context):
        caller = await self._caller(context, "RetryDocument")
        response = await self._call(
            context, self.ingest.RetryIngest, ingest_pb2.RetryIngestRequest(tenant=caller.tenant, doc_id=request.doc_id)
        )
        return gateway_pb2.RetryDocumentResponse(job_id=response.job_id, version=response.version)

    # -- search and answers --------------------------------------------------------------------

    def _retrieve_request(
        self, caller, query: str, top_k: int, fusion, doc_ids=(), metadata_filters=(), date_range=None, generation=0
    ) -> retrieve_pb2.RetrieveRequest:
        return retrieve_pb2.RetrieveRequest(
            tenant=caller.tenant,
            principals=list(caller.principals),
            query=query,
            top_k=top_k,
            fusion=fusion,
            doc_ids=list(doc_ids),
            metadata_filters=list(metadata_filters),
            date_range=date_range,
            generation=generation,
        )

    async def Search(self, request, context):
        caller = await self._caller(context, "Search")
        if request.generation and caller.role != gateway_pb2.ROLE_ADMIN:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "searching an index generation other than the active one is an operator's evaluation tool",
            )
        top_k = await self._check_query(context, request.query, request.top_k)
        await self._governed(context, lambda: self.governor.check_query(caller.tenant, caller.key_id))
        await self._governed(context, lambda: self.governor.enter(caller.tenant))
        try:
            response = await self._call(
                context,
                self.retrieve.Retrieve,
                self._retrieve_request(
                    caller,
                    request.query,
                    top_k,
                    request.fusion,
                    request.doc_ids,
                    request.metadata_filters,
                    request.date_range,
                    request.generation,
                ),
            )
        finally:
            self.governor.leave(caller.tenant)
        self.usage.add(caller.tenant, time.time(), queries=1)
        QUERIES.labels(caller.tenant, "search", "ok").inc()
        TOKENS.labels(caller.tenant, "embedding").inc(response.query_tokens)
        return gateway_pb2.SearchResponse(
            query_id=uuid.uuid4().hex,
            hits=response.hits,
            index_watermark=response.index_watermark,
            embedding_model_id=response.embedding_model_id,
            index_generation=response.index_generation,
            generation=response.generation,
            fusion=response.fusion,
        )

    async def Ask(self, request, context):
        caller = await self._caller(context, "Ask")
        top_k = await self._check_query(context, request.question, request.top_k)
        if request.HasField("min_retrieval_score") and not -1.0 <= request.min_retrieval_score <= 1.0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "min_retrieval_score is a cosine, in [-1, 1]")
        await self._governed(context, lambda: self.governor.check_query(caller.tenant, caller.key_id))
        await self._governed(context, lambda: self._budget(caller.tenant, "llm"))
        await self._governed(context, lambda: self.governor.enter(caller.tenant))
        try:
            async for message in self._answer(caller, request, top_k, context):
                yield message
        finally:
            self.governor.leave(caller.tenant)

    async def _cached(self, caller, request, top_k: int, context) -> tuple[str, gateway_pb2.AskFinal | None]:
        """The cache key at the current index watermark and model, and the answer cached under it."""
        if request.no_cache or self.settings.answer_cache_size <= 0:
            return "", None
        info = await self._call(context, self.retrieve.GetIndexInfo, retrieve_pb2.GetIndexInfoRequest())
        key = cache_key(
            caller.tenant,
            caller.principals,
            request.question,
            top_k,
            request.fusion,
            info.index_watermark,
            info.index_generation or info.embedding_model_id,
            answer_options(request),
        )
        answer = self.cache.get(key)
        ANSWER_CACHE.labels("hit" if answer else "miss").inc()
        return key, answer

    async def _answer(self, caller, request, top_k: int, context):
        query_id = uuid.uuid4().hex
        started = time.perf_counter()
        span = trace.get_current_span()
        span.set_attribute("rag.query_id", query_id)
        if self.settings.trace_content:
            span.set_attribute("rag.question", request.question)
        _, hit = await self._cached(caller, request, top_k, context)
        if hit is not None:
            answer = gateway_pb2.AskFinal()
            answer.CopyFrom(hit)
            answer.cached = True
            answer.manifest.query_id, answer.manifest.trace_id = query_id, current_trace_id()
            if answer.answer:
                yield gateway_pb2.AskResponse(delta=answer.answer)
            await self._audit(caller, request, answer, (time.perf_counter() - started) * 1000)
            yield gateway_pb2.AskResponse(final=answer)
            return
        retrieved = await self._call(
            context, self.retrieve.Retrieve, self._retrieve_request(caller, request.question, top_k, request.fusion)
        )
        retrieve_ms = (time.perf_counter() - started) * 1000
        final = None
        generate_request = generate_pb2.GenerateRequest(
            query_id=query_id, question=request.question, hits=retrieved.hits
        )
        if request.HasField("min_retrieval_score"):
            generate_request.min_retrieval_score = request.min_retrieval_score
        stream = self.generate.Generate(generate_request, timeout=self._timeout(context))
        try:
            async for message in stream:
                if message.HasField("final"):
                    final = message.final
                else:
                    yield gateway_pb2.AskResponse(delta=message.delta)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details())
        except asyncio.CancelledError:  # the client went away: stop the generation it asked for
            stream.cancel()
            raise
        if final is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the generate service ended without an answer")
        total_ms = (time.perf_counter() - started) * 1000
        chunker = retrieved.hits[0].chunk.chunker_version if retrieved.hits else CHUNKER_VERSION_UNKNOWN
        manifest = types_pb2.AnswerManifest(
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
        )
        answer = gateway_pb2.AskFinal(
            answer=final.answer,
            status=final.status,
            abstain_reason=final.abstain_reason,
            confidence=final.confidence,
            citations=final.citations,
            manifest=manifest,
        )
        status_name = types_pb2.AnswerStatus.Name(final.status).removeprefix("ANSWER_STATUS_").lower()
        QUERIES.labels(caller.tenant, "ask", status_name).inc()
        usage = manifest.usage
        for kind, n in (
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
            ("embedding", usage.embedding_tokens),
        ):
            TOKENS.labels(caller.tenant, kind).inc(n)
        COST.labels(caller.tenant).inc(usage.cost_usd)
        span.set_attribute("rag.tokens", usage.prompt_tokens + usage.completion_tokens + usage.embedding_tokens)
        span.set_attribute("rag.cost", usage.cost_usd)
        self.usage.add(
            caller.tenant,
            time.time(),
            queries=1,
            llm_tokens=usage.prompt_tokens + usage.completion_tokens,
            cost_usd=usage.cost_usd,
        )
        await self._audit(caller, request, answer, total_ms)
        if not request.no_cache:
            self.cache.put(
                cache_key(
                    caller.tenant,
                    caller.principals,
                    request.question,
                    top_k,
                    request.fusion,
                    retrieved.index_watermark,
                    retrieved.index_generation or retrieved.embedding_model_id,
                    answer_options(request),
                ),
                answer,
            )
        yield gateway_pb2.AskResponse(final=answer)

    async def _audit(self, caller, request, answer: gateway_pb2.AskFinal, latency_ms: float):
        """The answer goes to the audit stream (for consumers) and the answers bucket (replay, feedback)."""
        event = events_pb2.QueryAudit(
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
        try:
            await natsio.publish(
                self.js, f"rag.audit.{caller.tenant}", event.SerializeToString(), msg_id=answer.manifest.query_id
            )
            await self.answers.put(answer.manifest.query_id, event.SerializeToString())
        except Exception:  # the answer is already made; a lost audit is logged loudly, not returned as an error
            log.exception("query audit not published", extra={"fields": {"query_id": answer.manifest.query_id}})

    async def _logged(self, context, caller, query_id: str) -> events_pb2.QueryAudit:
        try:
            entry = await self.answers.get(query_id) if query_id.isalnum() else None
        except KeyNotFoundError:
            entry = None
        audit = events_pb2.QueryAudit.FromString(entry.value) if entry else None
        if audit is None or audit.tenant != caller.tenant:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no logged answer {query_id!r} for this tenant")
        return audit

    async def Replay(self, request, context):
        caller = await self._caller(context, "Replay")
        await self._governed(context, lambda: self.governor.check_query(caller.tenant, caller.key_id))
        original = await self._logged(context, caller, request.query_id)
        m = original.manifest
        again = gateway_pb2.AskRequest(question=original.question, top_k=m.top_k, fusion=m.fusion, no_cache=True)
        final = None
        async for message in self._answer(caller, again, m.top_k, context):
            if message.HasField("final"):
                final = message.final
        changes, reasons = replay_differences(original, final)
        return gateway_pb2.ReplayResponse(original=original, replayed=final, changes=changes, reasons=reasons)

    async def Feedback(self, request, context):
        caller = await self._caller(context, "Feedback")
        if request.rating not in (-1, 0, 1):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rating is -1 (bad), 0 (neutral) or 1 (good)")
        if len(request.comment) > 4000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the comment is longer than 4000 characters")
        audit = await self._logged(context, caller, request.query_id)
        audit.feedback_rating, audit.feedback_comment = request.rating, request.comment
        await self.answers.put(audit.query_id, audit.SerializeToString())
        await natsio.publish(self.js, f"rag.audit.feedback.{caller.tenant}", audit.SerializeToString())
        return gateway_pb2.FeedbackResponse()

    # -- keys ----------------------------------------------------------------------------------

    async def CreateApiKey(self, request, context):
        await self._caller(context, "CreateApiKey")
        if not valid_tenant(request.tenant):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"tenant {request.tenant!r} is not valid: use 1-63 of a-z, 0-9, '_' and '-'",
            )
        role = request.role or gateway_pb2.ROLE_READER
        api_key = new_key()
        record = await self.keys.add(
            key_hash(api_key),
            request.tenant,
            list(request.principals),
            role,
            request.description,
            ttl_seconds=request.ttl_seconds,
        )
        return gateway_pb2.CreateApiKeyResponse(
            api_key=api_key, key_id=record.key_id, tenant=record.tenant, role=record.role
        )

    async def ListApiKeys(self, request, context):
        await self._caller(context, "ListApiKeys")
        records = await self.keys.list(request.tenant)
        for record in records:
            record.key_sha256 = ""  # the hash is a lookup key: it stays inside
        return gateway_pb2.ListApiKeysResponse(keys=records)

    async def RevokeApiKey(self, request, context):
        await self._caller(context, "RevokeApiKey")
        record = await self.keys.revoke(request.key_id)
        if record is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no API key {request.key_id!r}")
        record.key_sha256 = ""
        return gateway_pb2.RevokeApiKeyResponse(key=record)

    # -- index generations ---------------------------------------------------------------------

    async def ListIndexGenerations(self, request, context):
        await self._caller(context, "ListIndexGenerations")
        reply = await self._call(context, self.retrieve.ListGenerations, retrieve_pb2.ListGenerationsRequest())
        return gateway_pb2.ListIndexGenerationsResponse(generations=reply.generations, pointer=reply.pointer)

    async def RebuildIndex(self, request, context):
        await self._caller(context, "RebuildIndex")
        if request.HasField("chunking"):
            problem = chunking_problem(request.chunking)
            if problem:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        asked = retrieve_pb2.CreateGenerationRequest(reason=request.reason, rechunk=request.rechunk)
        if request.HasField("chunking"):
            asked.chunking.CopyFrom(request.chunking)
        record = (await self._call(context, self.retrieve.CreateGeneration, asked)).generation
        if not record.rechunk:  # retrieve decides: named chunk sizes imply a re-chunk
            return gateway_pb2.RebuildIndexResponse(generation=record)
        queue = ingest_pb2.RechunkRequest(generation=record.number)
        if request.HasField("chunking"):
            queue.chunking.CopyFrom(request.chunking)
        try:
            queued = await self.ingest.Rechunk(queue, timeout=self._timeout(context))
        except grpc.aio.AioRpcError as exc:
            # A generation nothing will fill must not stay behind looking like a rebuild in progress.
            drop = retrieve_pb2.DropGenerationRequest(number=record.number)
            await self._call(context, self.retrieve.DropGeneration, drop)
            await context.abort(exc.code(), f"the documents could not be queued for re-chunking: {exc.details()}")
        return gateway_pb2.RebuildIndexResponse(generation=record, documents_queued=queued.documents_queued)

    async def EvaluateIndex(self, request, context):
        await self._caller(context, "EvaluateIndex")
        asked = retrieve_pb2.EvaluateGenerationRequest(
            number=request.number,
            dataset=request.dataset,
            tenant=request.tenant,
            principals=request.principals,
            queries=request.queries,
            modes=request.modes,
            tolerance=request.tolerance,
        )
        reply = await self._call(context, self.retrieve.EvaluateGeneration, asked)
        return gateway_pb2.EvaluateIndexResponse(verdict=reply.verdict)

    async def PromoteIndex(self, request, context):
        caller = await self._caller(context, "PromoteIndex")
        asked = retrieve_pb2.PromoteGenerationRequest(
            number=request.number,
            expected_active=request.expected_active,
            note=request.note,
            force=request.force,
            actor=f"key {caller.key_id}",
        )
        reply = await self._call(context, self.retrieve.PromoteGeneration, asked)
        return gateway_pb2.PromoteIndexResponse(pointer=reply.pointer)

    async def RollbackIndex(self, request, context):
        await self._caller(context, "RollbackIndex")
        reply = await self._call(context, self.retrieve.RollbackGeneration, retrieve_pb2.RollbackGenerationRequest())
        return gateway_pb2.RollbackIndexResponse(pointer=reply.pointer)

    async def DropIndexGeneration(self, request, context):
        await self._caller(context, "DropIndexGeneration")
        asked = retrieve_pb2.DropGenerationRequest(number=request.number)
        reply = await self._call(context, self.retrieve.DropGeneration, asked)
        return gateway_pb2.DropIndexGenerationResponse(pointer=reply.pointer)

    async def GetUsage(self, request, context):
        caller = await self._caller(context, "GetUsage")
        tenant = request.tenant or caller.tenant
        if tenant != caller.tenant and caller.role != gateway_pb2.ROLE_ADMIN:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "another tenant's usage needs an admin key")
        today, month = await self.usage.get(tenant, time.time())
        limits = json.dumps(dataclasses.asdict(self.governor.for_tenant(tenant)))
        return gateway_pb2.GetUsageResponse(today=today, this_month=month, limits_json=limits)


HEADER_LIMITS = {"title": 1024, "source_name": 1024, "content_type": 256}
MAX_ACL, MAX_PRINCIPAL = 64, 128
MAX_METADATA, MAX_METADATA_KEY, MAX_METADATA_VALUE = 64, 128, 2048


def header_problem(header: gateway_pb2.DocumentHeader) -> str:
    """What is wrong with a document header, or "" (every field has a size limit)."""
    for name, limit in HEADER_LIMITS.items():
        if len(getattr(header, name)) > limit:
            return f"{name} has {len(getattr(header, name))} characters; the limit is {limit}"
    if len(header.acl) > MAX_ACL:
        return f"acl has {len(header.acl)} principals; the limit is {MAX_ACL}"
    for principal in header.acl:
        if not principal or len(principal) > MAX_PRINCIPAL or not principal.isprintable():
            return f"acl principal {principal[:40]!r} must be 1-{MAX_PRINCIPAL} printable characters"
    if len(header.metadata) > MAX_METADATA:
        return f"metadata has {len(header.metadata)} entries; the limit is {MAX_METADATA}"
    for key, value in header.metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            return f"metadata key {key[:40]!r} must be 1-{MAX_METADATA_KEY} characters"
        if len(value) > MAX_METADATA_VALUE:
            return f"metadata value of {key!r} has {len(value)} characters; the limit is {MAX_METADATA_VALUE}"
    return ""


def answer_options(request: gateway_pb2.AskRequest) -> str:
    """Ask parameters besides question, top_k and fusion that change the answer (for the cache key)."""
    return f"min_retrieval_score={request.min_retrieval_score}" if request.HasField("min_retrieval_score") else ""


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


def main() -> None:
    run(lambda: GatewayService(GatewaySettings()))
