"""The gateway's API, synchronous."""

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO

import grpc

from rag.v1 import gateway_pb2, gateway_pb2_grpc, types_pb2
from ragmesh_client import requests
from ragmesh_client.channel import TLS, sync_channel
from ragmesh_client.retry import NOT_REPEATABLE, Retry, RetryPolicy, hint

DEFAULT_TARGET = "127.0.0.1:50051"


class Client:
    """One channel to the gateway. `timeout` is each call's default deadline in seconds (longer for
    uploads, replays and index work), covering every attempt; any method takes `timeout=` to set its own."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        api_key: str = "",
        *,
        tls: TLS | None = None,
        allow_plaintext_key: bool | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.target, self.timeout, self.retry = target, timeout, retry or RetryPolicy()
        self.channel = sync_channel(target, api_key, tls, allow_plaintext_key)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = (("x-api-key", api_key),) if api_key else ()

    @classmethod
    def from_env(cls, **options) -> "Client":
        """RAGMESH_ADDR, RAGMESH_API_KEY and RAGMESH_TLS_CA_FILE (…_CERT_FILE, …_KEY_FILE)."""
        target = os.environ.get("RAGMESH_ADDR") or DEFAULT_TARGET
        return cls(target, os.environ.get("RAGMESH_API_KEY", ""), tls=TLS.from_env(), **options)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------------

    def _deadline(self, method: str, timeout: float | None) -> float:
        if timeout is None:
            timeout = max(self.timeout, requests.LONGER.get(method, 0.0))
        return time.monotonic() + timeout

    def _pause(self, method: str, error: grpc.RpcError, attempt: int, deadline: float) -> None:
        """Wait before the next attempt, or raise `error` when it is final."""
        remaining = deadline - time.monotonic()
        wait = self.retry.delay(error.code(), hint(error), attempt, remaining, method not in NOT_REPEATABLE)
        if wait is None:
            raise error
        if self.retry.on_retry:
            self.retry.on_retry(Retry(method, error.code(), attempt, wait))
        time.sleep(wait)

    def call(self, method: str, request, timeout: float | None = None):
        """Any unary method of GatewayService by name, with the deadline and retries of the others."""
        deadline = self._deadline(method, timeout)
        attempt = 0
        while True:
            attempt += 1
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                return getattr(self.stub, method)(request, metadata=self.metadata, timeout=remaining)
            except grpc.RpcError as error:
                self._pause(method, error, attempt, deadline)

    # -- documents -----------------------------------------------------------------------------

    def upload(
        self,
        source: str | os.PathLike | BinaryIO,
        *,
        doc_id: str | None = None,
        title: str | None = None,
        acl: Iterable[str] = (),
        metadata: Mapping[str, str] | None = None,
        content_type: str = "",
        source_name: str | None = None,
        password: str = "",
        timeout: float | None = None,
    ) -> gateway_pb2.IngestDocumentResponse:
        """Send a document from its path or from a binary stream, piece by piece. A file's doc_id,
        source name and title default to its name and stem; no `acl` means public to the tenant."""
        body = requests.Source(source)
        first = requests.header(body, doc_id, title, acl, metadata, content_type, source_name, password)
        deadline = self._deadline("IngestDocument", timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                with body.open() as stream:
                    parts = _parts(first, stream)
                    remaining = max(deadline - time.monotonic(), 0.001)
                    return self.stub.IngestDocument(parts, metadata=self.metadata, timeout=remaining)
            except grpc.RpcError as error:
                if not body.repeatable:
                    raise
                self._pause("IngestDocument", error, attempt, deadline)

    def get_job(self, job_id: str, *, timeout: float | None = None) -> types_pb2.JobRecord:
        return self.call("GetJob", gateway_pb2.GetJobRequest(job_id=job_id), timeout).job

    def wait_for_job(self, job_id: str, *, timeout: float = 600.0, poll_s: float = 0.3) -> types_pb2.JobRecord:
        """The job once done, failed or deduplicated; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.status in requests.TERMINAL_JOBS:
                return job
            if time.monotonic() + poll_s > deadline:
                raise TimeoutError(f"job {job_id} is still {types_pb2.JobStatus.Name(job.status)} after {timeout:g} s")
            time.sleep(poll_s)

    def get_document(self, doc_id: str, *, timeout: float | None = None) -> types_pb2.DocumentRecord:
        return self.call("GetDocument", gateway_pb2.GetDocumentRequest(doc_id=doc_id), timeout).document

    def list_documents(
        self, *, include_deleted: bool = False, timeout: float | None = None
    ) -> list[types_pb2.DocumentRecord]:
        request = gateway_pb2.ListDocumentsRequest(include_deleted=include_deleted)
        return list(self.call("ListDocuments", request, timeout).documents)

    def delete_document(self, doc_id: str, *, timeout: float | None = None) -> types_pb2.DocumentRecord:
        return self.call("DeleteDocument", gateway_pb2.DeleteDocumentRequest(doc_id=doc_id), timeout).document

    def retry_document(self, doc_id: str, *, timeout: float | None = None) -> gateway_pb2.RetryDocumentResponse:
        return self.call("RetryDocument", gateway_pb2.RetryDocumentRequest(doc_id=doc_id), timeout)

    # -- queries -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        fusion: types_pb2.FusionParams | None = None,
        doc_ids: Iterable[str] = (),
        where: Mapping[str, Iterable[str]] | None = None,
        since: str = "",
        until: str = "",
        generation: int = 0,
        timeout: float | None = None,
    ) -> gateway_pb2.SearchResponse:
        """Hybrid search; `where` keeps documents whose metadata key holds one of the values."""
        request = requests.search(query, top_k, fusion, doc_ids, where, since, until, generation)
        return self.call("Search", request, timeout)

    def ask_stream(
        self,
        question: str,
        *,
        top_k: int = 0,
        fusion: types_pb2.FusionParams | None = None,
        no_cache: bool = False,
        min_retrieval_score: float | None = None,
        conversation_id: str = "",
        history: Iterable[types_pb2.Turn] = (),
        timeout: float | None = None,
    ) -> Iterator[gateway_pb2.AskResponse]:
        """The answer as it is written: `delta` messages, then one `final`. Retried only before the
        first message arrives, so no text is ever repeated."""
        request = requests.ask(question, top_k, fusion, no_cache, min_retrieval_score, conversation_id, history)
        deadline = self._deadline("Ask", timeout)
        attempt = 0
        while True:
            attempt += 1
            remaining = max(deadline - time.monotonic(), 0.001)
            call = self.stub.Ask(request, metadata=self.metadata, timeout=remaining)
            started = False
            try:
                for message in call:
                    started = True
                    yield message
                return
            except grpc.RpcError as error:
                if started:
                    raise
                self._pause("Ask", error, attempt, deadline)
            finally:
                call.cancel()  # the caller stopped reading: end the generation too

    def ask(self, question: str, **options) -> gateway_pb2.AskFinal:
        """The final answer (citations, status, manifest) of `ask_stream`."""
        final = None
        for message in self.ask_stream(question, **options):
            if message.HasField("final"):
                final = message.final
        return final

    def replay(self, query_id: str, *, timeout: float | None = None) -> gateway_pb2.ReplayResponse:
        return self.call("Replay", gateway_pb2.ReplayRequest(query_id=query_id), timeout)

    def feedback(self, query_id: str, rating: int, comment: str = "", *, timeout: float | None = None) -> None:
        self.call("Feedback", gateway_pb2.FeedbackRequest(query_id=query_id, rating=rating, comment=comment), timeout)

    # -- keys and usage ------------------------------------------------------------------------

    def create_api_key(
        self,
        tenant: str,
        role: int = gateway_pb2.ROLE_READER,
        *,
        principals: Iterable[str] = (),
        description: str = "",
        ttl_seconds: int = 0,
        timeout: float | None = None,
    ) -> gateway_pb2.CreateApiKeyResponse:
        request = gateway_pb2.CreateApiKeyRequest(
            tenant=tenant, role=role, principals=list(principals), description=description, ttl_seconds=ttl_seconds
        )
        return self.call("CreateApiKey", request, timeout)

    def list_api_keys(self, tenant: str = "", *, timeout: float | None = None) -> list[gateway_pb2.ApiKeyRecord]:
        return list(self.call("ListApiKeys", gateway_pb2.ListApiKeysRequest(tenant=tenant), timeout).keys)

    def revoke_api_key(self, key_id: str, *, timeout: float | None = None) -> gateway_pb2.ApiKeyRecord:
        return self.call("RevokeApiKey", gateway_pb2.RevokeApiKeyRequest(key_id=key_id), timeout).key

    def usage(self, tenant: str = "", *, timeout: float | None = None) -> gateway_pb2.GetUsageResponse:
        return self.call("GetUsage", gateway_pb2.GetUsageRequest(tenant=tenant), timeout)

    # -- index generations (operator) ----------------------------------------------------------

    def list_index_generations(self, *, timeout: float | None = None) -> gateway_pb2.ListIndexGenerationsResponse:
        return self.call("ListIndexGenerations", gateway_pb2.ListIndexGenerationsRequest(), timeout)

    def rebuild_index(
        self, request: gateway_pb2.RebuildIndexRequest, *, timeout: float | None = None
    ) -> gateway_pb2.RebuildIndexResponse:
        return self.call("RebuildIndex", request, timeout)

    def evaluate_index(
        self, request: gateway_pb2.EvaluateIndexRequest, *, timeout: float | None = None
    ) -> gateway_pb2.EvaluateIndexResponse:
        return self.call("EvaluateIndex", request, timeout)

    def promote_index(
        self, request: gateway_pb2.PromoteIndexRequest, *, timeout: float | None = None
    ) -> gateway_pb2.PromoteIndexResponse:
        return self.call("PromoteIndex", request, timeout)

    def rollback_index(self, *, timeout: float | None = None) -> gateway_pb2.RollbackIndexResponse:
        return self.call("RollbackIndex", gateway_pb2.RollbackIndexRequest(), timeout)

    def drop_index_generation(
        self, number: int, *, timeout: float | None = None
    ) -> gateway_pb2.DropIndexGenerationResponse:
        return self.call("DropIndexGeneration", gateway_pb2.DropIndexGenerationRequest(number=number), timeout)


def _parts(first: gateway_pb2.DocumentHeader, stream: BinaryIO) -> Iterator[gateway_pb2.IngestDocumentRequest]:
    yield gateway_pb2.IngestDocumentRequest(header=first)
    for piece in requests.pieces(stream):
        yield gateway_pb2.IngestDocumentRequest(data=piece)
