"""Search latency through the gateway (query embedding included) at 1, 8 and 32 concurrent
clients over 100k distinct chunks (by default; benchmarks/distinct_corpus.py), beside the raw
engine latencies in the same run; with --documents N, over N dbpedia abstracts ingested through
the gateway instead, with tracing on and off."""

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np

from benchmarks.bulk_index import bulk_load
from benchmarks.common import DBPEDIA, NO_LIMITS, BenchSystem, read_jsonl
from rag.v1 import gateway_pb2, gateway_pb2_grpc
from ragmesh_client import Client
from services.cli import traces
from services.cli.evaluate import Dataset, ingest_corpus


def load(bench: BenchSystem, abstracts: list[dict]) -> None:
    client = Client(bench.gateway, bench.key)
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


def builds_running() -> int:
    """Dense graph builds running on this machine now (retrieve starts each as a process)."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and b"hnsw_builder" in (entry / "cmdline").read_bytes()
        except OSError:
            pass
    return count


def wait_for_graphs(quiet_s: float = 15.0, timeout_s: float = 3600.0) -> float:
    """Seconds until no graph build has run for `quiet_s` (retrieve looks for work every second)."""
    started = quiet_since = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if builds_running():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return round(quiet_since - started, 1)
        time.sleep(0.5)
    raise TimeoutError(f"dense graph builds still running after {timeout_s} s")


PHASES = ("embed_query", "dense", "lexical", "fuse", "fetch")
SERVER_SPANS = {"retrieve": "RetrieveService/Retrieve", "gateway": "GatewayService/Search"}


def phase_latency(bench: BenchSystem, since: float) -> dict:
    """Median time of each step of the searches since `since` (epoch s), from the run's own spans:
    retrieve's phases (`rag.retrieve.*`), the Retrieve and gateway Search server spans, and how many
    searches embedded their query (the rest took it from a cache or searched BM25 alone)."""
    time.sleep(1.5)  # spans are flushed every 0.5 s
    spans = [s for s in traces.load_spans(bench.system.data / "traces") if s["start"] >= since]
    out: dict = {}
    for phase in PHASES:
        took = [s["duration_ms"] for s in spans if s["name"] == f"rag.retrieve.{phase}"]
        out[phase] = round(statistics.median(took), 2) if took else None
        out[f"{phase}_spans"] = len(took)
    for name, suffix in SERVER_SPANS.items():
        took = [s["duration_ms"] for s in spans if s["name"].endswith(suffix) and s["kind"] == "server"]
        out[name] = round(statistics.median(took), 2) if took else None
        out[f"{name}_spans"] = len(took)
    return out


def run(
    tracing: bool, abstracts, queries, rounds: int, chunks: int = 0, vectors: Path | None = None
) -> tuple[dict, dict, dict]:
    env = dict(NO_LIMITS)
    if not tracing:
        env |= {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    with BenchSystem(env) as bench:
        if chunks:
            bulk_load(bench, "default", abstracts, chunks, vectors)
            # Over the chunks as ingested while serving (no restart): at once, while their graphs are
            # built in the background, then once they are; then after a restart.
            serving = {str(c): measure(bench.gateway, bench.key, queries, c, rounds) for c in (1, 8)}
            graphs_s = wait_for_graphs()
            built = {str(c): measure(bench.gateway, bench.key, queries, c, rounds) for c in (1, 8)}
            started = time.monotonic()
            bench.system.restart("retrieve")  # returns once retrieve reports SERVING again
            since = time.time()
            hnsw = {
                "while_serving": serving,
                "graphs_built_s": graphs_s,
                "graphs_built": built,
                "restart_s": round(time.monotonic() - started, 1),
            }
        else:
            load(bench, abstracts)
            hnsw, since = {}, time.time()
        clients = {"1": measure(bench.gateway, bench.key, queries, 1, rounds)}
        before = bench.cpu_seconds()
        clients["8"] = measure(bench.gateway, bench.key, queries, 8, rounds)
        after = bench.cpu_seconds()
        searches = 8 * rounds + 5  # the 5 warm-up searches included
        clients["8"]["cpu_ms_per_search"] = {
            name: round((after[name] - before[name]) * 1000 / searches, 2) for name in after if name in before
        }
        clients["32"] = measure(bench.gateway, bench.key, queries, 32, rounds)
        clients["8_new_texts"] = measure(bench.gateway, bench.key, queries, 8, rounds, new_texts=True)
        engines = phase_latency(bench, since) if tracing else {}
    return clients, engines, hnsw


def figures(m: dict) -> str:
    return f"p50 {m['p50_ms']:6.1f} ms p99 {m['p99_ms']:6.1f} ms {m['qps']:6.1f} q/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000, help="distinct chunks loaded through the index stream")
    parser.add_argument("--vectors", type=Path, help="an .npz file keeping the chunks' vectors between runs")
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
        on, engines, hnsw = run(True, abstracts, queries, args.rounds, args.chunks, args.vectors)
        off, size = None, f"{args.chunks} distinct chunks (sentences sampled across {len(abstracts)} abstracts)"
    print(f"{size}; gateway Search, top_k 10, query embedding included")
    for c in ("1", "8", "32"):
        line = f"{c:>2} clients: {figures(on[c])}"
        if off:
            line += f" | tracing off: {figures(off[c])}"
        serving = hnsw.get("while_serving", {}).get(c)
        if serving:
            ratio = serving["p50_ms"] / on[c]["p50_ms"]
            line += f" | as ingested while serving: {figures(serving)} (p50 ratio {ratio:.2f})"
            built = hnsw["graphs_built"][c]
            ratio = built["p50_ms"] / on[c]["p50_ms"]
            line += f" | once their graphs are built: {figures(built)} (p50 ratio {ratio:.2f})"
        print(line)
    line = f" 8 clients, every query text new (embedded, no cache): {figures(on['8_new_texts'])}"
    if off:
        line += f" | tracing off: {figures(off['8_new_texts'])}"
    print(line)
    cpu = ", ".join(f"{name} {ms}" for name, ms in on["8"]["cpu_ms_per_search"].items())
    print(f"CPU per search at 8 clients (ms, by process; 0.01 s clock ticks): {cpu}")
    if hnsw:
        print(f"graphs of the chunks ingested while serving built after {hnsw['graphs_built_s']} s")
        print(f"restart of retrieve until SERVING: {hnsw['restart_s']} s")
    medians = ", ".join(f"{name} {engines[name]} ms" for name in (*PHASES, *SERVER_SPANS))
    print(f"medians of the spans of the last phase (after the restart): {medians}")
    print(f"searches {engines['retrieve_spans']}, of which embedded their query: {engines['embed_query_spans']}")
    result = {"chunks": args.chunks if not args.documents else None, "clients": on, "span_p50_ms": engines}
    if off:
        result |= {"documents": args.documents, "tracing_off": off}
    result |= hnsw
    print(json.dumps(result))


if __name__ == "__main__":
    main()
