"""One tenant floods Ask; how much does another tenant's latency suffer? Measured with the
per-tenant concurrency limit at 1 and 2 and without it, in one run. Flooding clients behave like
the ragmesh client: a refusal's retry-after-ms hint is honoured."""

import argparse
import json
import threading
import time

import grpc
import numpy as np

from benchmarks.common import DBPEDIA, BenchSystem, read_jsonl
from rag.v1 import gateway_pb2, gateway_pb2_grpc
from ragmesh_client import Client
from services.cli.evaluate import Dataset, ingest_corpus

LIMITS = {
    "default": {"query_rate": 0, "key_query_rate": 0, "ingest_rate": 0, "max_concurrent_queries": 0},
    "cap1": {"query_rate": 0, "key_query_rate": 0, "max_concurrent_queries": 1},
    "cap2": {"query_rate": 0, "key_query_rate": 0, "max_concurrent_queries": 2},
    "uncapped": {"query_rate": 0, "key_query_rate": 0, "max_concurrent_queries": 0},
}
FLOODERS = {"cap1": "flood capped at 1 in flight", "cap2": "flood capped at 2 in flight", "uncapped": "flood uncapped"}


def tenant_key(bench: BenchSystem, tenant: str) -> str:
    with Client(bench.gateway, bench.key) as admin:
        return admin.create_api_key(tenant, gateway_pb2.ROLE_WRITER).api_key


def asks(stub, key: str, questions: list[str], count: int) -> list[float]:
    """`count` sequential Asks (cache off); each latency in ms."""
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        request = gateway_pb2.AskRequest(question=questions[i % len(questions)], no_cache=True)
        list(stub.Ask(request, metadata=(("x-api-key", key),), timeout=60))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def flood(stub, key: str, questions: list[str], threads: int, stop: threading.Event) -> dict:
    counts = {"ok": 0, "refused": 0}

    def loop(offset: int) -> None:
        i = offset
        while not stop.is_set():
            request = gateway_pb2.AskRequest(question=questions[i % len(questions)], no_cache=True)
            try:
                list(stub.Ask(request, metadata=(("x-api-key", key),), timeout=60))
                counts["ok"] += 1
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                counts["refused"] += 1
                hint = dict(exc.trailing_metadata() or ()).get("retry-after-ms", "100")
                time.sleep(int(hint) / 1000)
            i += 1

    workers = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    return {"workers": workers, "counts": counts}


def summary(latencies: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--asks", type=int, default=200, help="the victim's Asks per phase")
    parser.add_argument("--threads", type=int, default=16, help="flooding clients")
    args = parser.parse_args()
    abstracts = read_jsonl(DBPEDIA / "corpus.jsonl")[: args.documents]
    questions = [q["text"] for q in read_jsonl(DBPEDIA / "queries.jsonl")]
    with BenchSystem({"RAGMESH_TENANT_LIMITS": json.dumps(LIMITS)}) as bench:
        keys = {tenant: tenant_key(bench, tenant) for tenant in ("victim", *FLOODERS)}
        for tenant, key in keys.items():
            ingest_corpus(Client(bench.gateway, key), Dataset(tenant, abstracts, {}, {}))
        stub = gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(bench.gateway))
        asks(stub, keys["victim"], questions, 20)  # warm-up
        phases = {"unloaded": summary(asks(stub, keys["victim"], questions, args.asks))}
        for flooder in FLOODERS:
            stop = threading.Event()
            running = flood(stub, keys[flooder], questions, args.threads, stop)
            time.sleep(2)
            phases[flooder] = summary(asks(stub, keys["victim"], questions, args.asks)) | running["counts"]
            stop.set()
            for worker in running["workers"]:
                worker.join()
            phases[flooder] |= running["counts"]
    base = phases["unloaded"]["p99_ms"]
    print(f"victim tenant, {args.asks} sequential Asks per phase; {args.threads} clients of another tenant flooding")
    print(f"unloaded:                          p50 {phases['unloaded']['p50_ms']:6.1f} ms  p99 {base:6.1f} ms")
    for flooder, label in FLOODERS.items():
        p = phases[flooder]
        print(
            f"{label + ':':34} p50 {p['p50_ms']:6.1f} ms  p99 {p['p99_ms']:6.1f} ms  "
            f"p99 ratio {p['p99_ms'] / base:4.2f}  (flood answered {p['ok']}, refused {p['refused']})"
        )
    result = {"unloaded": phases["unloaded"]}
    for flooder in FLOODERS:
        result[flooder] = phases[flooder] | {"p99_ratio": round(phases[flooder]["p99_ms"] / base, 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
