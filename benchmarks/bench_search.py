"""Search latency through the gateway (query embedding included) at 1, 8 and 32 concurrent
clients over 100k chunks (by default), beside the raw engine latencies in the same run; with
--documents N, over N dbpedia abstracts ingested through the gateway instead, with tracing on
and off."""

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np

from benchmarks.bulk_index import bulk_load
from benchmarks.common import DBPEDIA, NO_LIMITS, BenchSystem, read_jsonl
from rag.v1 import gateway_pb2, gateway_pb2_grpc
from services.cli import traces
from services.cli.client import Client
from services.cli.evaluate import Dataset, ingest_corpus


def load(bench: BenchSystem, abstracts: list[dict]) -> None:
    client = Client(None, api_key=bench.key, addr=bench.gateway)
    ingest_corpus(client, Dataset("bench", abstracts, {}, {}))


def measure(addr: str, key: str, queries: list[str], clients: int, rounds: int, new_texts: bool = False) -> dict:
    """Closed-loop clients. The judged queries repeat, so their embeddings come from the embed
    service's cache after the first pass; with `new_texts` every query text is new (a number
    appended), so every query is embedded."""
    stub = gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(addr))
    metadata = (("x-api-key", key),)
    work = [queries[i % len(queries)] + (f" {i}" if new_texts else "") for i in range(rounds * clients)]

    def one(text: str) -> float:
        started = time.perf_counter()
        stub.Search(gateway_pb2.SearchRequest(query=text, top_k=10), metadata=metadata, timeout=30)
        return (time.perf_counter() - started) * 1000

    for text in queries[:5]:
        one(text)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, work))
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "qps": round(len(work) / elapsed, 1),
    }


def engine_latency(bench: BenchSystem) -> dict:
    """Median time inside each engine, from the run's own `rag.retrieve.dense|lexical` spans."""
    time.sleep(1.5)  # spans are flushed every 0.5 s
    spans = traces.load_spans(bench.system.data / "traces")
    return {
        engine: round(statistics.median(s["duration_ms"] for s in spans if s["name"] == f"rag.retrieve.{engine}"), 2)
        for engine in ("dense", "lexical")
    }


def run(tracing: bool, abstracts, queries, rounds: int, chunks: int = 0) -> tuple[dict, dict, dict]:
    env = dict(NO_LIMITS)
    if not tracing:
        env |= {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    with BenchSystem(env) as bench:
        if chunks:
            bulk_load(bench, "default", abstracts, chunks)
            # Baseline in the same run: the dense index as loaded, searched by brute force.
            before = {str(c): measure(bench.gateway, bench.key, queries, c, rounds) for c in (1, 8)}
            started = time.monotonic()
            bench.system.restart("retrieve")  # builds the HNSW graph before it serves again
            hnsw = {"before_hnsw_build": before, "hnsw_build_s": round(time.monotonic() - started, 1)}
        else:
            load(bench, abstracts)
            hnsw = {}
        clients = {str(c): measure(bench.gateway, bench.key, queries, c, rounds) for c in (1, 8, 32)}
        clients["8_new_texts"] = measure(bench.gateway, bench.key, queries, 8, rounds, new_texts=True)
        engines = engine_latency(bench) if tracing else {}
    return clients, engines, hnsw


def figures(m: dict) -> str:
    return f"p50 {m['p50_ms']:6.1f} ms p99 {m['p99_ms']:6.1f} ms {m['qps']:6.1f} q/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks loaded through the index stream")
    parser.add_argument("--documents", type=int, default=0, help="instead: abstracts ingested through the gateway")
    parser.add_argument("--rounds", type=int, default=10, help="searches per client")
    args = parser.parse_args()
    abstracts = read_jsonl(DBPEDIA / "corpus.jsonl")
    queries = [q["text"] for q in read_jsonl(DBPEDIA / "queries.jsonl")]
    if args.documents:
        abstracts = abstracts[: args.documents]
        on, engines, hnsw = run(True, abstracts, queries, args.rounds)
        off, _, _ = run(False, abstracts, queries, args.rounds)
        size = f"{args.documents} documents"
    else:
        on, engines, hnsw = run(True, abstracts, queries, args.rounds, args.chunks)
        off, size = None, f"{args.chunks} chunks ({len(abstracts)} abstracts, each embedded once)"
    print(f"{size}; gateway Search, top_k 10, query embedding included")
    for c in ("1", "8", "32"):
        line = f"{c:>2} clients: {figures(on[c])}"
        if off:
            line += f" | tracing off: {figures(off[c])}"
        before = hnsw.get("before_hnsw_build", {}).get(c)
        if before:
            line += f" | before the HNSW build: {figures(before)} (p50 ratio {on[c]['p50_ms'] / before['p50_ms']:.2f})"
        print(line)
    line = f" 8 clients, every query text new (embedded, no cache): {figures(on['8_new_texts'])}"
    if off:
        line += f" | tracing off: {figures(off['8_new_texts'])}"
    print(line)
    if hnsw:
        print(f"HNSW build on restart of retrieve: {hnsw['hnsw_build_s']} s")
    print(
        f"inside the engines (median of this run's spans): dense {engines['dense']} ms, lexical {engines['lexical']} ms"
    )
    result = {"chunks": args.chunks if not args.documents else None, "clients": on, "engine_p50_ms": engines}
    if off:
        result |= {"documents": args.documents, "tracing_off": off}
    result |= hnsw
    print(json.dumps(result))


if __name__ == "__main__":
    main()
