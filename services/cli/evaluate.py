"""Retrieval evaluation on a BEIR-layout dataset, through the gateway.

Metrics come from trec_eval (pytrec-eval): nDCG@10 with graded gains (ideal ranking from the
judgments), recall@100 over judgments with score > 0, MRR@10. Rankings are per document: a
search returns chunks, capped at one per document.
"""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytrec_eval

from rag.v1 import gateway_pb2, types_pb2
from services.cli.client import Client

MODES = {
    "dense": types_pb2.FusionParams(method="dense"),
    "lexical": types_pb2.FusionParams(method="lexical"),
    "hybrid": types_pb2.FusionParams(),  # the server's default fusion, the one users get
}
DEPTH = 100


@dataclass
class Dataset:
    name: str
    corpus: list[dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def read_jsonl(path: Path) -> list[dict]:
    # Split on "\n" only: texts may hold Unicode line separators.
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").split("\n") if line.strip()]


def load_dataset(folder: Path) -> Dataset:
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            continue  # the header line, when there is one
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {q["_id"]: q["text"] for q in read_jsonl(folder / "queries.jsonl") if q["_id"] in qrels}
    return Dataset(folder.resolve().name, read_jsonl(folder / "corpus.jsonl"), queries, qrels)


def tenant_for(name: str) -> str:
    return ("eval-" + re.sub(r"[^a-z0-9_-]+", "-", name.lower())).strip("-")[:63]


def scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean nDCG@10, recall@100 and MRR@10 over the judged queries (a query with no results scores 0)."""
    run = {q: run.get(q, {}) or {"__none__": 0.0} for q in qrels}
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in run.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        "ndcg@10": float(np.mean([full[q]["ndcg_cut_10"] for q in qrels])),
        "recall@100": float(np.mean([full[q]["recall_100"] for q in qrels])),
        "mrr@10": float(np.mean([mrr[q]["recip_rank"] for q in qrels])),
    }


def ingest_corpus(client: Client, dataset: Dataset, concurrency: int = 8, progress=None) -> dict[str, int]:
    """Upload every document; unchanged ones are deduplicated by the system. Waits until indexed."""

    def send(doc):
        header = gateway_pb2.DocumentHeader(
            doc_id=str(doc["_id"]), title=doc.get("title", ""), content_type="text/plain"
        )
        return client.upload(header, doc.get("text", "").encode())

    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(send, dataset.corpus))
    pending = [r.job_id for r in responses if not r.deduplicated]
    failed = 0
    for job_id in pending:
        while True:
            job = client.call("GetJob", gateway_pb2.GetJobRequest(job_id=job_id)).job
            if job.status in (types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED):
                failed += job.status == types_pb2.JOB_STATUS_FAILED
                break
            time.sleep(0.2)
        if progress:
            progress(1)
    return {"documents": len(responses), "submitted": len(pending), "failed": failed}


def fusion_with_cap(fusion: types_pb2.FusionParams) -> types_pb2.FusionParams:
    capped = types_pb2.FusionParams()
    capped.CopyFrom(fusion)
    capped.max_per_document = 1
    return capped


def evaluate(client: Client, dataset: Dataset, modes: list[str]) -> dict:
    report = {
        "dataset": dataset.name,
        "queries": len(dataset.queries),
        "generation": None,
        "model_id": "",
        "index_watermark": 0,
        "modes": {},
    }
    for mode in modes:
        run, latencies, last = search_all(client, dataset, MODES[mode])
        metrics = scores(dataset.qrels, run)
        metrics["latency_ms"] = {
            p: round(float(np.percentile(latencies, int(p[1:]))), 2) for p in ("p50", "p95", "p99")
        }
        metrics["fusion"] = {
            "method": last.fusion.method,
            "dense_weight": round(last.fusion.dense_weight, 4),
            "rrf_k": last.fusion.rrf_k,
            "candidate_depth": last.fusion.candidate_depth,
        }
        report["modes"][mode] = metrics
        report["model_id"], report["index_watermark"] = last.embedding_model_id, last.index_watermark
    return report


def search_all(client: Client, dataset: Dataset, fusion: types_pb2.FusionParams):
    """Run every query; the run (doc -> score, per query), latencies in ms, and the last response."""
    run, latencies, last = {}, [], None
    request_fusion = fusion_with_cap(fusion)
    for qid, text in dataset.queries.items():
        started = time.perf_counter()
        last = client.call("Search", gateway_pb2.SearchRequest(query=text, top_k=DEPTH, fusion=request_fusion))
        latencies.append((time.perf_counter() - started) * 1000)
        ranking: dict[str, float] = {}
        for rank, hit in enumerate(last.hits):
            ranking.setdefault(hit.chunk.doc_id, float(DEPTH - rank))
        run[qid] = ranking
    return run, latencies, last


def markdown(report: dict) -> str:
    lines = [
        f"# Retrieval evaluation: {report['dataset']}",
        "",
        f"{report['queries']} queries; model `{report['model_id']}`; index watermark {report['index_watermark']}.",
        "",
        "| mode | fusion | nDCG@10 | recall@100 | MRR@10 | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, m in report["modes"].items():
        f = m["fusion"]
        fusion = f["method"] + (f" w={f['dense_weight']}" if f["method"] not in ("dense", "lexical") else "")
        lines.append(
            f"| {mode} | {fusion} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
            f"{m['latency_ms']['p50']} | {m['latency_ms']['p95']} | {m['latency_ms']['p99']} |"
        )
    return "\n".join(lines) + "\n"
