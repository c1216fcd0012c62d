"""End-to-end ingestion throughput against the embed service's own, on the same chunks, same run.

Embedding is the bottleneck; everything else (upload, registry, parsing, chunking, NATS, both
indexes) is overhead. Goal: end-to-end >= 85% of embed-only chunks/s.
"""

import argparse
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc

from benchmarks.common import DBPEDIA, NO_LIMITS, BenchSystem, read_jsonl
from rag.v1 import embed_pb2, embed_pb2_grpc, gateway_pb2, gateway_pb2_grpc, types_pb2
from services.common.config import IngestSettings
from services.common.tokenizer import load_tokenizer, token_counter
from services.ingest.chunker import chunk_document
from services.ingest.parsing import parse


def as_documents(abstracts: list[dict], per_document: int) -> list[dict]:
    """Group abstracts into Markdown documents with one section each (a report-like bulk import)."""
    if per_document == 1:
        return [
            {"_id": a["_id"], "title": a.get("title", ""), "text": a["text"], "type": "text/plain"} for a in abstracts
        ]
    docs = []
    for start in range(0, len(abstracts), per_document):
        group = abstracts[start : start + per_document]
        text = "\n\n".join(f"## {a.get('title', '')}\n\n{a['text']}" for a in group)
        docs.append({"_id": f"bundle-{start}", "title": f"Bundle {start}", "text": text, "type": "text/markdown"})
    return docs


def chunk_texts(docs: list[dict]) -> list[list[str]]:
    """Each document's chunk texts, as ingest makes them."""
    count = token_counter(load_tokenizer(None, 256))
    texts = []
    for d in docs:
        parsed = parse(d["text"].encode(), content_type=d["type"], title=d.get("title", ""))
        texts.append([c.embed_text for c in chunk_document(parsed, count)])
    return texts


def embed_only(addr: str, documents: list[list[str]], batch: int, concurrency: int) -> float:
    """The embed service's rate on the import's own calls: each document's chunks in calls of at
    most `batch`, `concurrency` calls at once (the jobs a worker runs at once)."""
    stub = embed_pb2_grpc.EmbedServiceStub(
        grpc.insecure_channel(
            addr, options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        )
    )
    batches = [texts[i : i + batch] for texts in documents for i in range(0, len(texts), batch)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(
            pool.map(
                lambda b: stub.Embed(embed_pb2.EmbedRequest(texts=b, lane=embed_pb2.EMBED_LANE_BULK), timeout=600),
                batches,
            )
        )
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def nats_messages(bench: BenchSystem) -> dict[str, int]:
    """NATS messages the services have sent (publishes, requests to JetStream, fetch requests,
    acks) and received (replies, fetched messages) so far, from each one's own client counts:
    `out` and `in` over all of them, `out.<service>` for each one's own."""
    total = {"out": 0, "in": 0}
    for service in ("gateway", "ingest", "retrieve"):
        url = f"http://127.0.0.1:{bench.ports.metrics(service)}/metrics"
        for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
            for direction in ("out", "in"):
                if line.startswith(f'ragmesh_nats_client_messages_total{{direction="{direction}"}}'):
                    count = int(float(line.rsplit(" ", 1)[1]))
                    total[direction] += count
                    total[f"{direction}.{service}"] = count
    return total


def bulk_batches(metrics_port: int) -> dict[str, float]:
    """The embed service's bulk-lane counters: batches, texts, real and padded tokens."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    wanted = {
        "ragmesh_embed_batch_size_count": "batches",
        "ragmesh_embed_batch_size_sum": "texts",
        "ragmesh_embed_batch_tokens_sum": "padded",
        "ragmesh_embed_tokens_total": "tokens",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name in wanted and 'lane="bulk"' in rest:
            out[wanted[name]] = float(line.rsplit(" ", 1)[1])
    return out


def batch_shape(before: dict[str, float], after: dict[str, float]) -> str:
    delta = {k: after[k] - before[k] for k in after}
    batches = max(delta["batches"], 1)
    return (
        f"{delta['texts'] / batches:.1f} texts/batch, "
        f"{delta['tokens'] / max(delta['padded'], 1):.1%} of padded tokens real"
    )


def steady_rate(jobs: list[types_pb2.JobRecord]) -> float:
    """Chunks/s while the import is in full flow: between the moments 10% and 90% of the chunks were
    indexed (by the jobs' own completion times), leaving out the ramp-up and the drain."""
    done = sorted((j.updated_unix_ms, j.chunks_total) for j in jobs)
    total = sum(c for _, c in done)
    marks, seen = [], 0
    for moment, count in done:
        seen += count
        marks.append((seen, moment))
    low = next(m for s, m in marks if s >= 0.1 * total)
    high = next(m for s, m in marks if s >= 0.9 * total)
    chunks_between = sum(c for m, c in done if low < m <= high)
    return chunks_between / max((high - low) / 1000, 1e-3)


def end_to_end(addr: str, key: str, docs: list[dict]) -> tuple[float, int, float, int]:
    """Chunks/s from the first upload to the last job done (by the jobs' own completion times),
    chunks, the steady rate, and how many job-status reads the benchmark made (each one a registry
    read in ingest: NATS traffic that is ours, not the import's)."""
    channel = grpc.insecure_channel(addr)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    metadata = (("x-api-key", key),)

    def submit(d):
        header = gateway_pb2.DocumentHeader(doc_id=d["_id"], title=d.get("title", ""), content_type=d["type"])
        parts = iter(
            [
                gateway_pb2.IngestDocumentRequest(header=header),
                gateway_pb2.IngestDocumentRequest(data=d["text"].encode()),
            ]
        )
        return stub.IngestDocument(parts, metadata=metadata, timeout=120).job_id

    started_ms = time.time() * 1000
    with ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(submit, docs))
    # The last job submitted is followed (every 0.3 s, as `ragmesh ingest --wait` polls) and the
    # others are read once it is done, when most are done too: the benchmark's own reads do not
    # compete with the import it measures, and the end is each job's own completion time.
    pending, finished, reads = list(jobs), [], 0
    while pending:
        reads += 1
        job = stub.GetJob(gateway_pb2.GetJobRequest(job_id=pending[-1]), metadata=metadata, timeout=30).job
        if job.status in (types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED):
            finished.append(job)  # `done` is a job's last write
            pending.pop()
        else:
            time.sleep(0.3)
    chunks = sum(j.chunks_total for j in finished)
    elapsed = max(j.updated_unix_ms for j in finished) / 1000 - started_ms / 1000
    return chunks / elapsed, chunks, steady_rate(finished), reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--abstracts", type=int, default=1500, help="dbpedia-5k abstracts to import")
    parser.add_argument("--per-document", type=int, default=10, help="abstracts per document (sections)")
    parser.add_argument("--small", type=int, default=400, help="also import this many one-abstract documents")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="alternating embed-only / end-to-end rounds; medians")
    args = parser.parse_args()
    abstracts = read_jsonl(DBPEDIA / "corpus.jsonl")
    docs = as_documents(abstracts[: args.abstracts], args.per_document)
    small = as_documents(abstracts[args.abstracts : args.abstracts + args.small], 1)
    texts, small_texts = chunk_texts(docs), chunk_texts(small)
    calls_at_once = IngestSettings().worker_concurrency  # the jobs one ingest worker runs at once
    rounds = []
    with BenchSystem(NO_LIMITS) as bench:
        metrics = bench.ports.metrics("embed")
        for round_number in range(args.repeat):
            # New ids each round: the same content under the same id would be deduplicated.
            fresh = [d | {"_id": f"{d['_id']}-r{round_number}"} for d in docs]
            embed_before = bench.cpu_seconds().get("embed", 0.0)
            shape_before = bulk_batches(metrics)
            embed_rate = embed_only(bench.ports.addr("embed"), texts, args.batch, calls_at_once)
            embed_alone = bench.cpu_seconds().get("embed", 0.0) - embed_before
            shape_between = bulk_batches(metrics)
            cpu_before = bench.cpu_seconds()
            e2e_rate, chunks, steady, _ = end_to_end(bench.gateway, bench.key, fresh)
            shapes = (batch_shape(shape_before, shape_between), batch_shape(shape_between, bulk_batches(metrics)))
            cpu = {k: round(v - cpu_before.get(k, 0), 1) for k, v in bench.cpu_seconds().items()}
            cpu["embed_alone"] = round(embed_alone, 1)
            rounds.append((e2e_rate / embed_rate, embed_rate, e2e_rate, steady, cpu))
            print(
                f"round {round_number + 1}: embed-only {embed_rate:.1f}, end-to-end {e2e_rate:.1f} chunks/s, "
                f"ratio {e2e_rate / embed_rate:.3f} whole run, {steady / embed_rate:.3f} steady; embed CPU "
                f"{embed_alone:.1f} s embedding alone, {cpu.get('embed', 0):.1f} s in the import; batches "
                f"{shapes[0]} alone, {shapes[1]} in the import"
            )
        _, embed_rate, e2e_rate, steady, cpu = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
        small_embed_rate = embed_only(bench.ports.addr("embed"), small_texts, args.batch, calls_at_once)
        messages_before, small_cpu_before = nats_messages(bench), bench.cpu_seconds()
        small_rate, small_chunks, _, status_reads = (
            end_to_end(bench.gateway, bench.key, small) if small else (0.0, 0, 0.0, 0)
        )
        messages = {k: v - messages_before[k] for k, v in nats_messages(bench).items()}
        small_cpu = {k: v - small_cpu_before.get(k, 0) for k, v in bench.cpu_seconds().items()}
        peak = bench.peak_rss_mb()
    ratio, steady_ratio = e2e_rate / embed_rate, steady / embed_rate
    print(
        f"documents {len(docs)} of {args.per_document} abstracts, chunks {chunks} "
        f"(expected {sum(len(t) for t in texts)}); the median of {args.repeat} rounds:"
    )
    print(f"ratio        {ratio:8.3f} over the whole run, first upload to last indexed (goal >= 0.85)")
    print(f"             {steady_ratio:8.3f} steady, between 10% and 90% of the chunks indexed")
    print(
        f"embed-only   {embed_rate:8.1f} chunks/s (embed service over gRPC, bulk lane, each document's chunks "
        f"in calls of up to {args.batch}, {calls_at_once} calls at once, as the import makes them)"
    )
    print(f"end-to-end   {e2e_rate:8.1f} chunks/s whole run, {steady:.1f} steady (through the gateway)")
    if small:
        per_doc = {k: v / len(small) for k, v in messages.items()}
        print(
            f"one-abstract documents: {small_rate / small_embed_rate:.3f} of embed-only on the same calls "
            f"({small_rate:.1f} against {small_embed_rate:.1f} chunks/s, {small_chunks} chunks; "
            f"{small_rate / embed_rate:.3f} of the bundles' embed-only rate); NATS messages per document: "
            f"{per_doc['out']:.1f} sent by the services, {per_doc['in']:.1f} received (sent: "
            + ", ".join(f"{name} {per_doc[f'out.{name}']:.1f}" for name in ("gateway", "ingest", "retrieve"))
            + f"); {status_reads / len(small):.1f} of those sent are the registry reads of the benchmark's own "
            f"job-status polls, {(messages['out'] - status_reads) / len(small):.1f} the import's"
        )
        print(
            "  CPU ms per one-abstract document: "
            + ", ".join(f"{name} {1000 * seconds / len(small):.1f}" for name, seconds in small_cpu.items() if seconds)
        )
    print(f"CPU seconds during the end-to-end run, per process (embed_alone: the embed-only run): {cpu}")
    print(f"peak RSS     {peak:8.1f} MiB (sum over all processes)")
    print(
        json.dumps(
            {
                "chunks_per_s": {
                    "end_to_end": round(e2e_rate, 1),
                    "steady": round(steady, 1),
                    "embed_only": round(embed_rate, 1),
                },
                "ratio_whole_run": round(ratio, 3),
                "ratio_steady": round(steady_ratio, 3),
                "small_documents_ratio": round(small_rate / small_embed_rate, 3) if small else None,
                "nats_messages_per_small_document": round(messages["out"] / len(small), 1) if small else None,
                "nats_messages_per_small_document_without_status_polls": (
                    round((messages["out"] - status_reads) / len(small), 1) if small else None
                ),
                "documents": len(docs),
                "chunks": chunks,
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
