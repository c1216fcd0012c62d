"""What a model migration costs: N dbpedia abstracts ingested with the packaged model, then
`rebuild --model all-MiniLM-L6-v2-int8` timed from the request until the new generation has caught
up (its chunks embedded again and written), beside the ingestion rate of the same corpus, with one
client searching all along: search latency before and during the re-embedding, and any error."""

import argparse
import json
import threading
import time

import grpc
import numpy as np

from benchmarks.common import DBPEDIA, NO_LIMITS, BenchSystem, read_jsonl
from rag.v1 import gateway_pb2, gateway_pb2_grpc
from ragmesh_client import Client
from services.cli.evaluate import Dataset, ingest_corpus
from services.embed.catalogue import INT8, PACKAGED


class Searcher(threading.Thread):
    """One client searching without pause, every query text new (so every query is embedded)."""

    def __init__(self, addr: str, key: str, queries: list[str]) -> None:
        super().__init__(daemon=True)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(addr))
        self.metadata, self.queries = (("x-api-key", key),), queries
        self.samples: list[tuple[float, float, int]] = []  # (when, ms, generation)
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            text = f"{self.queries[i % len(self.queries)]} {i}"
            i += 1
            started = time.perf_counter()
            try:
                reply = self.stub.Search(gateway_pb2.SearchRequest(query=text, top_k=10), metadata=self.metadata)
            except grpc.RpcError as exc:
                self.errors.append(f"{exc.code()}: {exc.details()}")
                continue
            self.samples.append((time.monotonic(), (time.perf_counter() - started) * 1000, reply.generation))

    def latency(self, start: float, end: float) -> dict:
        ms = [m for when, m, _ in self.samples if start <= when < end]
        if not ms:
            return {"searches": 0}
        return {
            "searches": len(ms),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
        }


def seed_log(bench: BenchSystem) -> dict:
    for line in (bench.system.data / "logs" / "retrieve.log").read_text().splitlines():
        if "started from re-embedded chunks" in line:
            entry = json.loads(line)
            return {k: entry[k] for k in ("chunks", "documents", "seconds", "chunks_per_s")}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=5000)
    args = parser.parse_args()
    abstracts = read_jsonl(DBPEDIA / "corpus.jsonl")[: args.documents]
    queries = [q["text"] for q in read_jsonl(DBPEDIA / "queries.jsonl")]
    env = {**NO_LIMITS, "RAGMESH_MODELS": f"{PACKAGED},{INT8}"}
    with BenchSystem(env) as bench:
        client = Client(bench.gateway, bench.key)
        started = time.monotonic()
        ingest_corpus(client, Dataset("bench", abstracts, {}, {}))
        ingest_s = time.monotonic() - started
        chunks = next(g for g in client.list_index_generations().generations if g.active).dense_points

        searcher = Searcher(bench.gateway, bench.key, queries)
        searcher.start()
        time.sleep(10)
        before = time.monotonic()
        number = client.rebuild_index(gateway_pb2.RebuildIndexRequest(embedding_model=INT8)).generation.number
        while True:
            info = next(g for g in client.list_index_generations().generations if g.record.number == number)
            if info.caught_up and not info.missing_documents:
                break
            time.sleep(0.2)
        rebuilt = time.monotonic()
        time.sleep(1)
        searcher.stopping.set()
        searcher.join()
        result = {
            "documents": len(abstracts),
            "chunks": chunks,
            "ingest": {"seconds": round(ingest_s, 1), "chunks_per_s": round(chunks / ingest_s, 1)},
            "rebuild": {
                "seconds": round(rebuilt - before, 1),
                "chunks_per_s": round(chunks / (rebuilt - before), 1),
                "seed": seed_log(bench),
                "dense_points": info.dense_points,
            },
            "search_before": searcher.latency(before - 10, before),
            "search_during": searcher.latency(before, rebuilt),
            "search_errors": searcher.errors[:5],
            "search_error_count": len(searcher.errors),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
