"""A workload of ingests, changes, ACL changes and deletions of a few hundred documents, run through
the gateway while processes are killed, and the checks of its end state document by document."""

import random
import threading
import time
from dataclasses import dataclass, field

import grpc
from conftest import DATASETS

from rag.v1 import gateway_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.cli.evaluate import read_jsonl
from services.retrieve.backends.opensearch_index import OpenSearchIndex
from services.retrieve.backends.tantivy_index import TantivyIndex

RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
ACLS = (["public"], ["alice"], ["bob"])


def texts(count: int) -> list[str]:
    abstracts = read_jsonl(DATASETS / "dbpedia-5k" / "corpus.jsonl")[: 2 * count + 64]
    return [f"{a['title']}. {a['text']}" for a in abstracts]


def patiently(call, deadline_s: float = 300):
    """Call until it answers: a service or NATS restarting is retried, as any client would."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() not in RETRIED or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@dataclass
class Expected:
    content: bytes = b""
    acl: list[str] = field(default_factory=lambda: ["public"])
    alive: bool = True


class Workload:
    """Every document's intended end state follows the last operation the gateway accepted."""

    def __init__(self, client, count: int, seed: int = 7) -> None:
        self.client, self.rng = client, random.Random(seed)
        self.texts = texts(count)
        self.expected: dict[str, Expected] = {}
        self.doc_ids = [f"doc-{i:03d}" for i in range(count)]

    def _ingest(self, doc_id: str, content: bytes, acl: list[str]) -> None:
        patiently(lambda: self.client.ingest(doc_id, content, acl=acl))
        self.expected[doc_id] = Expected(content, acl, True)

    def _delete(self, doc_id: str) -> None:
        request = gateway_pb2.DeleteDocumentRequest(doc_id=doc_id)
        patiently(lambda: self.client.stub.DeleteDocument(request, metadata=self.client.metadata, timeout=30))
        self.expected[doc_id].alive = False

    def run(self) -> None:
        extra = iter(self.texts[len(self.doc_ids) :])
        for i, doc_id in enumerate(self.doc_ids):
            self._ingest(doc_id, self.texts[i].encode(), self.rng.choice(ACLS))
        for doc_id in self.doc_ids:
            roll = self.rng.random()
            now = self.expected[doc_id]
            if roll < 0.35:  # a new version, sometimes with its ACL changed while its job runs
                content = next(extra).encode()
                self._ingest(doc_id, content, now.acl)
                if self.rng.random() < 0.5:
                    self._ingest(doc_id, content, self.rng.choice(ACLS))
            elif roll < 0.55:  # the ACL alone
                self._ingest(doc_id, now.content, self.rng.choice([a for a in ACLS if a != now.acl]))
            elif roll < 0.8:  # deleted, sometimes right after a change (its job queued or running)
                if self.rng.random() < 0.5:
                    self._ingest(doc_id, next(extra).encode(), now.acl)
                self._delete(doc_id)
                if self.rng.random() < 0.2:  # and uploaded again
                    self._ingest(doc_id, next(extra).encode(), self.rng.choice(ACLS))


class Killer(threading.Thread):
    """SIGKILLs the named processes, every few seconds one, in rounds that each kill every one of
    them once in a random order, until stopped."""

    def __init__(self, kill, names: list[str], every: tuple[float, float] = (3.0, 6.0), seed: int = 11) -> None:
        super().__init__(daemon=True)
        self.kill, self.names, self.every, self.rng = kill, names, every, random.Random(seed)
        self.stopping = threading.Event()
        self.killed: list[str] = []

    def run(self) -> None:
        order: list[str] = []
        while not self.stopping.wait(self.rng.uniform(*self.every)):
            if not order:
                order = self.rng.sample(self.names, len(self.names))
            name = order.pop()
            try:
                self.kill(name)
                self.killed.append(name)
            except (ProcessLookupError, KeyError, FileNotFoundError):
                order.append(name)  # restarting right now: kill it next time

    def stop_after(self, rounds: int, timeout: float = 600) -> None:
        """Let it kill every process `rounds` times, then stop it."""
        deadline = time.monotonic() + timeout
        while len(self.killed) < rounds * len(self.names) and time.monotonic() < deadline:
            time.sleep(0.5)
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def settled_registry(client, workload: Workload, timeout: float = 600) -> dict[str, types_pb2.DocumentRecord]:
    """Every document's registry record once all are in their end state: indexed at their last
    content, or deleted. A failed or lost document fails the test."""
    deadline = time.monotonic() + timeout
    request = gateway_pb2.ListDocumentsRequest(include_deleted=True)
    while True:
        listed = patiently(lambda: client.stub.ListDocuments(request, metadata=client.metadata, timeout=30))
        records = {r.doc_id: r for r in listed.documents}
        pending = []
        for doc_id, want in workload.expected.items():
            record = records.get(doc_id)
            if record is None:
                raise AssertionError(f"{doc_id} is not in the registry")
            failed = [v for v in record.versions if v.status == types_pb2.DOCUMENT_STATUS_FAILED]
            assert not failed, (doc_id, [v.error for v in failed])
            done = (
                record.status == types_pb2.DOCUMENT_STATUS_DELETED
                if not want.alive
                else record.status == types_pb2.DOCUMENT_STATUS_INDEXED
                and record.indexed_version == record.current_version
            )
            if not done:
                pending.append(doc_id)
        if not pending:
            return records
        assert time.monotonic() < deadline, f"{len(pending)} documents never settled, e.g. {pending[:5]}"
        time.sleep(1.0)


def check_engine(name: str, engine, workload: Workload, records: dict, tenant: str) -> None:
    """One engine, chunk by chunk: a live document holds exactly its current version's chunks, all
    live, with its current ACL; a deleted one holds nothing."""
    for doc_id, want in workload.expected.items():
        stored = engine.chunks_of(tenant, doc_id)
        record = records[doc_id]
        if not want.alive:
            assert stored == [], f"{name}: deleted {doc_id} still holds {stored}"
            continue
        current = next(v for v in record.versions if v.version == record.current_version)
        assert sorted(v for _, v, _ in stored) == [record.current_version] * current.chunk_count, (name, doc_id, stored)
        assert all(live for _, _, live in stored), (name, doc_id, stored)
        ids = [cid for cid, _, _ in stored]
        # A lexical engine reads chunks from the tenant's own index.
        chunks = engine.fetch(tenant, ids) if isinstance(engine, TantivyIndex | OpenSearchIndex) else engine.fetch(ids)
        acls = {tuple(c.acl) for c in chunks.values()}
        assert acls == {tuple(want.acl)}, (name, doc_id, acls, want.acl, record.metadata_revision)


def check_searches(search, workload: Workload, records: dict) -> None:
    """Through the public API: each live document is found at its current version by a caller
    its ACL admits, never by one it does not; a deleted document is found by nobody."""
    everyone = {"public", "alice", "bob"}
    for doc_id, want in workload.expected.items():
        hits = search(doc_id, want.content.decode()[:200], sorted(everyone))
        if not want.alive:
            assert hits == [], f"deleted {doc_id} was found"
            continue
        assert hits and {h.chunk.version for h in hits} == {records[doc_id].current_version}, (doc_id, hits[:1])
        if want.acl != ["public"]:
            outsider = sorted(everyone - set(want.acl) - {"public"})
            assert search(doc_id, want.content.decode()[:200], outsider) == [], f"{doc_id} leaked past its ACL"


def retrieve_searcher(port: int, tenant: str):
    """search(doc_id, query, principals) against one retrieve replica: every chunk of the document
    among the first hundred, as the caller's principals may see them."""

    def search(doc_id: str, query: str, principals: list[str]):
        request = retrieve_pb2.RetrieveRequest(
            tenant=tenant,
            principals=principals,
            query=query,
            top_k=100,
            doc_ids=[doc_id],
            fusion=types_pb2.FusionParams(method="dense", candidate_depth=100),
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
            return list(patiently(lambda: stub.Retrieve(request, timeout=30)).hits)

    return search
