"""Gateway: the only public API. Each method authenticates the key and asks the policy whether its
role may call it, then hands the request to the module that does the work: documents, answers,
keys, index generations. Finer decisions (document ACLs, tenants) are the policy's too."""

import dataclasses
import json
import logging
import time

import grpc
from opentelemetry import trace

from rag.v1 import gateway_pb2, gateway_pb2_grpc, generate_pb2_grpc, ingest_pb2_grpc, retrieve_pb2_grpc
from services.common import natsio
from services.common.clients import channel
from services.common.config import GatewaySettings
from services.common.ids import valid_tenant
from services.common.refusal import Refused
from services.common.server import Service, run
from services.common.usage import UsageStore
from services.gateway import policy
from services.gateway.answers import Answerer
from services.gateway.audit import AuditLog
from services.gateway.auth import KeyStore, key_from_metadata, key_hash, new_key
from services.gateway.cache import AnswerCache
from services.gateway.conversations import Conversations, check_history
from services.gateway.documents import Documents
from services.gateway.downstream import CURRENT_METHOD, Downstream
from services.gateway.generations import Generations
from services.gateway.limits import Governor, TenantLimits
from services.gateway.metering import Meter

log = logging.getLogger(__name__)
BOOTSTRAP_TENANT = "default"
MAX_COMMENT = 4000


def invalid(message: str) -> Refused:
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, message)


class GatewayService(Service, gateway_pb2_grpc.GatewayServiceServicer):
    name = "gateway"

    def register(self, server):
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(self, server)
        return [gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name]

    async def start(self) -> None:
        s: GatewaySettings = self.settings
        self.nc = await natsio.connect(s.nats_url, "gateway", s.nats_password)
        js = self.nc.jetstream()
        await natsio.ensure_all(js, s.nats_replicas, conversation_ttl_seconds=s.conversation_ttl_seconds)
        self.keys = KeyStore(js, await js.key_value(natsio.KV_KEYS), cache_seconds=s.key_cache_seconds)
        self.usage = UsageStore(await js.key_value(natsio.KV_USAGE), s.usage_flush_seconds)
        self.usage.start()
        self.audit = await AuditLog.open(js, self.nc.max_payload, s.audit_retention_days, s.nats_replicas)
        if s.bootstrap_key_sha256:
            await self.keys.ensure(
                s.bootstrap_key_sha256, BOOTSTRAP_TENANT, ["admin"], policy.OPERATOR, "bootstrap operator key"
            )
        self.governor = Governor(TenantLimits.parse(s.tenant_limits), uploads_in_flight=s.uploads_in_flight)
        meter = Meter(self.governor, self.usage)
        downstream = Downstream(s)
        ingest = ingest_pb2_grpc.IngestServiceStub(channel(s.ingest_addr, s))
        retrieve = retrieve_pb2_grpc.RetrieveServiceStub(channel(s.retrieve_addr, s))
        generate = generate_pb2_grpc.GenerateServiceStub(channel(s.generate_addr, s))
        self.meter = meter
        self.documents = Documents(ingest, downstream, meter, self.usage, s.max_document_bytes)
        cache = AnswerCache(s.answer_cache_size, s.answer_cache_ttl_seconds)
        conversations = Conversations(await js.key_value(natsio.KV_CONVERSATIONS), s.conversation_turns)
        self.answers = Answerer(
            retrieve, generate, downstream, cache, self.audit, self.usage, conversations, s.trace_content
        )
        self.generations = Generations(retrieve, ingest, downstream)

    async def stop(self) -> None:
        await self.usage.stop()
        await natsio.close(self.nc)

    async def _caller(self, context, method: str) -> gateway_pb2.ApiKeyRecord:
        """The key's record, once it is known, valid and its role may call `method`."""
        CURRENT_METHOD.set(method)
        record, problem = await self.keys.lookup(key_from_metadata(context.invocation_metadata()))
        if record is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, problem)
        policy.authorize(record, method)
        trace.get_current_span().set_attribute("rag.tenant", record.tenant)
        return record

    def _top_k(self, text: str, top_k: int) -> int:
        s = self.settings
        if not text.strip():
            raise invalid("the question is empty")
        if len(text) > s.max_question_chars:
            raise invalid(f"the question has {len(text)} characters; the limit is {s.max_question_chars}")
        if top_k > s.max_top_k:
            raise invalid(f"top_k {top_k} is above the limit {s.max_top_k}")
        return top_k or s.default_top_k

    # -- documents -----------------------------------------------------------------------------

    async def IngestDocument(self, request_iterator, context):
        caller = await self._caller(context, "IngestDocument")
        return await self.documents.upload(caller, request_iterator, context)

    async def GetJob(self, request, context):
        return await self.documents.get_job(await self._caller(context, "GetJob"), request, context)

    async def GetDocument(self, request, context):
        return await self.documents.get(await self._caller(context, "GetDocument"), request, context)

    async def ListDocuments(self, request, context):
        return await self.documents.list(await self._caller(context, "ListDocuments"), request, context)

    async def DeleteDocument(self, request, context):
        return await self.documents.delete(await self._caller(context, "DeleteDocument"), request, context)

    async def RetryDocument(self, request, context):
        return await self.documents.retry(await self._caller(context, "RetryDocument"), request, context)

    # -- search and answers --------------------------------------------------------------------

    async def Search(self, request, context):
        caller = await self._caller(context, "Search")
        policy.searchable_generation(caller, request.generation)
        top_k = self._top_k(request.query, request.top_k)
        async with self.meter.query(caller, llm=False):
            return await self.answers.search(caller, request, top_k, context)

    async def Ask(self, request, context):
        caller = await self._caller(context, "Ask")
        top_k = self._top_k(request.question, request.top_k)
        if request.HasField("min_retrieval_score") and not -1.0 <= request.min_retrieval_score <= 1.0:
            raise invalid("min_retrieval_score is a cosine, in [-1, 1]")
        check_history(list(request.history), request.conversation_id)
        async with self.meter.query(caller, llm=True):
            async for message in self.answers.answer(caller, request, top_k, context):
                yield message

    async def Replay(self, request, context):
        caller = await self._caller(context, "Replay")
        original = policy.answer_readable(caller, await self.audit.logged(request.query_id), request.query_id)
        async with self.meter.query(caller, llm=True):
            return await self.answers.replay(caller, original, context)

    async def Feedback(self, request, context):
        caller = await self._caller(context, "Feedback")
        if request.rating not in (-1, 0, 1):
            raise invalid("rating is -1 (bad), 0 (neutral) or 1 (good)")
        if len(request.comment) > MAX_COMMENT:
            raise invalid(f"the comment is longer than {MAX_COMMENT} characters")
        async with self.meter.query(caller, llm=False):
            rated = policy.answer_readable(caller, await self.audit.logged(request.query_id), request.query_id)
            await self.audit.rate(rated, caller, request.rating, request.comment)
        return gateway_pb2.FeedbackResponse()

    # -- keys and usage ------------------------------------------------------------------------

    async def CreateApiKey(self, request, context):
        caller = await self._caller(context, "CreateApiKey")
        if request.tenant and not valid_tenant(request.tenant):
            raise invalid(f"tenant {request.tenant!r} is not valid: use 1-63 of a-z, 0-9, '_' and '-'")
        tenant, role = policy.new_key(caller, request)
        api_key = new_key()
        record = await self.keys.add(
            key_hash(api_key), tenant, list(request.principals), role, request.description, request.ttl_seconds
        )
        return gateway_pb2.CreateApiKeyResponse(
            api_key=api_key, key_id=record.key_id, tenant=record.tenant, role=record.role
        )

    async def ListApiKeys(self, request, context):
        caller = await self._caller(context, "ListApiKeys")
        records = await self.keys.list(policy.key_listing_scope(caller, request.tenant))
        for record in records:
            record.key_sha256 = ""  # the hash is a lookup key: it stays inside
        return gateway_pb2.ListApiKeysResponse(keys=records)

    async def RevokeApiKey(self, request, context):
        caller = await self._caller(context, "RevokeApiKey")
        record = await self.keys.revoke(policy.revocable(caller, await self.keys.find(request.key_id), request.key_id))
        record.key_sha256 = ""
        return gateway_pb2.RevokeApiKeyResponse(key=record)

    async def GetUsage(self, request, context):
        caller = await self._caller(context, "GetUsage")
        tenant = policy.tenant_scope(caller, request.tenant, "the usage")
        today, month = await self.usage.get(tenant, time.time())
        limits = json.dumps(dataclasses.asdict(self.governor.for_tenant(tenant)))
        return gateway_pb2.GetUsageResponse(today=today, this_month=month, limits_json=limits)

    # -- index generations ---------------------------------------------------------------------

    async def ListIndexGenerations(self, request, context):
        await self._caller(context, "ListIndexGenerations")
        return await self.generations.list(request, context)

    async def RebuildIndex(self, request, context):
        await self._caller(context, "RebuildIndex")
        return await self.generations.rebuild(request, context)

    async def EvaluateIndex(self, request, context):
        await self._caller(context, "EvaluateIndex")
        return await self.generations.evaluate(request, context)

    async def PromoteIndex(self, request, context):
        caller = await self._caller(context, "PromoteIndex")
        return await self.generations.promote(request, context, caller)

    async def RollbackIndex(self, request, context):
        await self._caller(context, "RollbackIndex")
        return await self.generations.rollback(request, context)

    async def DropIndexGeneration(self, request, context):
        await self._caller(context, "DropIndexGeneration")
        return await self.generations.drop(request, context)


def main() -> None:
    run(lambda: GatewayService(GatewaySettings()))
