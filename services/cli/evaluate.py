"""Retrieval evaluation on a BEIR-layout dataset, through the gateway.

Metrics come from trec_eval (pytrec-eval): nDCG@10 with graded gains (ideal ranking from the
judgments), recall@100 over judgments with score > 0, MRR@10. Rankings are per document: a
search returns chunks, capped at one per document.
"""

import dataclasses
import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.v1 import types_pb2
from ragmesh_client import Client, RetryPolicy
from services.common.metrics import MODES, scores
from services.generate.confidence import Gate, Signals, passes

DEPTH = 100


@dataclass
class Dataset:
    name: str
    corpus: list[dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    skipped: int = 0  # judged queries without text in queries.jsonl: left out, as trec_eval and BEIR do


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
    queries = {
        str(q["_id"]): q["text"]
        for q in read_jsonl(folder / "queries.jsonl")
        if str(q["_id"]) in qrels and str(q.get("text") or "").strip()
    }
    # A judged query without text cannot be searched: scoring it 0 would understate every mode.
    judged = {qid: docs for qid, docs in qrels.items() if qid in queries}
    skipped = len(qrels) - len(judged)
    return Dataset(folder.resolve().name, read_jsonl(folder / "corpus.jsonl"), queries, judged, skipped)


def tenant_for(name: str) -> str:
    return ("eval-" + re.sub(r"[^a-z0-9_-]+", "-", name.lower())).strip("-")[:63]


def ingest_corpus(client: Client, dataset: Dataset, concurrency: int = 8, progress=None) -> dict[str, int]:
    """Upload every document; unchanged ones are deduplicated by the system. Waits until indexed."""

    def send(doc):
        text = io.BytesIO(doc.get("text", "").encode())
        return client.upload(text, doc_id=str(doc["_id"]), title=doc.get("title", ""), content_type="text/plain")

    with ThreadPoolExecutor(concurrency) as pool:
        responses = list(pool.map(send, dataset.corpus))
    pending = [r.job_id for r in responses if not r.deduplicated]
    failed = 0
    for job_id in pending:
        job = client.wait_for_job(job_id, timeout=3600, poll_s=0.2)
        failed += job.status == types_pb2.JOB_STATUS_FAILED
        if progress:
            progress(1)
    return {"documents": len(responses), "submitted": len(pending), "failed": failed}


def fusion_with_cap(fusion: types_pb2.FusionParams) -> types_pb2.FusionParams:
    capped = types_pb2.FusionParams()
    capped.CopyFrom(fusion)
    capped.max_per_document = 1
    return capped


def evaluate(client: Client, dataset: Dataset, modes: list[str], generation: int = 0) -> dict:
    """Metrics per mode over every judged query, searched in index `generation` (0 = the active one)."""
    report = {
        "dataset": dataset.name,
        "queries": len(dataset.queries),
        "skipped_queries": dataset.skipped,
        "generation": None,
        "model_id": "",
        "index_watermark": 0,
        "modes": {},
    }
    for mode in modes:
        run, latencies, last, decisions = search_all(client, dataset, MODES[mode], generation)
        metrics = scores(dataset.qrels, run)
        metrics["latency_ms"] = {
            p: round(float(np.percentile(latencies, int(p[1:]))), 2) for p in ("p50", "p95", "p99")
        }
        metrics["fusion"] = {
            "method": last.fusion.method,
            "decisions": decisions,
            "dense_weight": round(last.fusion.dense_weight, 4),
            "rrf_k": last.fusion.rrf_k,
            "candidate_depth": last.fusion.candidate_depth,
            "dense_depth": last.fusion.dense_depth,
            "lexical_depth": last.fusion.lexical_depth,
        }
        report["modes"][mode] = metrics
        report["model_id"], report["index_watermark"] = last.embedding_model_id, last.index_watermark
        report["generation"] = last.index_generation or None
    return report


def search_all(client: Client, dataset: Dataset, fusion: types_pb2.FusionParams, generation: int = 0):
    """Run every query; the run (doc -> score, per query), latencies in ms, the last response, and how
    often `auto` decided each way (reason -> queries)."""
    run, latencies, last, decisions = {}, [], None, {}
    request_fusion = fusion_with_cap(fusion)
    waited: list[float] = []  # waits for a rate limit are not latency
    client.retry = dataclasses.replace(client.retry or RetryPolicy(), on_retry=lambda r: waited.append(r.delay_s))
    for qid, text in dataset.queries.items():
        started = time.perf_counter()
        last = client.search(text, top_k=DEPTH, fusion=request_fusion, generation=generation)
        latencies.append((time.perf_counter() - started - sum(waited)) * 1000)
        waited.clear()
        reason = last.fusion.decision.reason
        if reason:
            decisions[reason] = decisions.get(reason, 0) + 1
        ranking: dict[str, float] = {}
        for rank, hit in enumerate(last.hits):
            ranking.setdefault(hit.chunk.doc_id, float(DEPTH - rank))
        run[qid] = ranking
    return run, latencies, last, decisions


def markdown(report: dict) -> str:
    lines = [
        f"# Retrieval evaluation: {report['dataset']}",
        "",
        f"{report['queries']} queries"
        + (
            f" ({report['skipped_queries']} judged queries without text in queries.jsonl left out)"
            if report.get("skipped_queries")
            else ""
        )
        + f"; index generation `{report['generation']}`; "
        f"model `{report['model_id']}`; index watermark {report['index_watermark']}.",
        "",
        "| mode | fusion | nDCG@10 | recall@100 | MRR@10 | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, m in report["modes"].items():
        f = m["fusion"]
        fusion = f["method"] + (f" w={f['dense_weight']}" if f["method"] not in ("dense", "lexical", "auto") else "")
        if f.get("decisions"):
            fusion += " (" + ", ".join(f"{reason} {n}" for reason, n in sorted(f["decisions"].items())) + ")"
        lines.append(
            f"| {mode} | {fusion} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
            f"{m['latency_ms']['p50']} | {m['latency_ms']['p95']} | {m['latency_ms']['p99']} |"
        )
    return "\n".join(lines) + "\n"


# --- Answers: abstention calibrated on answerable and unanswerable questions ---

GATE_OFF = -1.0  # min_retrieval_score that lets every question through to the answerer
ANSWERABLE = "answerable"


@dataclass(frozen=True)
class AnswerRecord:
    question_id: str
    kind: str  # "answerable", or how the question was made unanswerable ("held-out", "out-of-domain")
    abstained: bool
    reason: str
    best_dense: float
    confidence: float
    agreement: bool = False
    coverage: float = 0.0
    dense_read: bool = True  # the dense side was searched: its cosine can judge the hits

    @property
    def answerable(self) -> bool:
        return self.kind == ANSWERABLE


def held_out(dataset: Dataset) -> Dataset:
    """The corpus without any document judged relevant to any query: there, every query is unanswerable."""
    relevant = {doc for judged in dataset.qrels.values() for doc, score in judged.items() if score > 0}
    corpus = [doc for doc in dataset.corpus if str(doc["_id"]) not in relevant]
    return Dataset(f"{dataset.name}-heldout", corpus, dataset.queries, dataset.qrels)


def ask_all(client: Client, questions: dict[str, str], kind: str) -> list[AnswerRecord]:
    """Every question with the retrieval gate off, so that any threshold can be applied afterwards."""
    records = []
    for qid, text in questions.items():
        final = client.ask(text, no_cache=True, min_retrieval_score=GATE_OFF)
        dense = [h.dense_score for h in final.manifest.hits if h.dense_matched]
        records.append(
            AnswerRecord(
                qid,
                kind,
                final.status == types_pb2.ANSWER_STATUS_ABSTAINED,
                types_pb2.AbstainReason.Name(final.abstain_reason).removeprefix("ABSTAIN_REASON_"),
                max(dense, default=-1.0),
                final.confidence,
                final.manifest.signals.agreement,
                final.manifest.signals.lexical_coverage,
                not final.manifest.signals.dense_skipped,
            )
        )
    return records


def answered(record: AnswerRecord, threshold: float | Gate) -> bool:
    """Answered under a dense threshold alone, or under a whole gate (its three signals)."""
    if isinstance(threshold, Gate):
        return not record.abstained and passes(
            Signals(record.best_dense, record.agreement, record.coverage, record.dense_read), threshold
        )
    return not record.abstained and record.best_dense >= threshold


def abstention_at(records: list[AnswerRecord], threshold: float | Gate) -> dict[str, float]:
    """Rates when questions whose best dense score is under `threshold` abstain as well."""
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    abstentions = [r for r in records if not answered(r, threshold)]
    rates = {
        "answered_answerable": round(sum(answered(r, threshold) for r in answerable) / max(len(answerable), 1), 4),
        "abstention_recall": round(
            sum(not answered(r, threshold) for r in unanswerable) / max(len(unanswerable), 1), 4
        ),
        "abstention_precision": round(
            sum(not r.answerable for r in abstentions) / len(abstentions) if abstentions else 1.0, 4
        ),
    }
    for kind in sorted({r.kind for r in unanswerable}):
        of_kind = [r for r in unanswerable if r.kind == kind]
        rates[f"abstention_recall_{kind}"] = round(sum(not answered(r, threshold) for r in of_kind) / len(of_kind), 4)
    return rates


def calibrate(records: list[AnswerRecord], goal: float = 0.9) -> dict:
    """The retrieval gate (min dense score) with the best balanced accuracy, in the middle of the
    range of thresholds that reach it (the widest margin on both sides); whether it meets `goal`
    for both answering and abstaining."""
    values = sorted({r.best_dense for r in records})
    candidates = [values[0] - 0.01] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]

    def quality(t: float) -> float:
        rates = abstention_at(records, t)
        return (rates["answered_answerable"] + rates["abstention_recall"]) / 2

    best = max(map(quality, candidates))
    plateau = [t for t in candidates if quality(t) == best]
    chosen = round((plateau[0] + plateau[-1]) / 2, 4)
    if quality(chosen) != best:  # the best thresholds are not one contiguous range
        chosen = round(plateau[len(plateau) // 2], 4)
    rates = abstention_at(records, chosen)
    return {
        "min_dense_score": round(chosen, 4),
        **rates,
        "goal": goal,
        "goal_met": rates["answered_answerable"] >= goal and rates["abstention_recall"] >= goal,
    }


def answers_report(records: list[AnswerRecord], configured: Gate) -> dict:
    """Rates at the configured gate (all its signals) and at the best dense threshold alone: over
    every unanswerable question, and per kind of unanswerable question; plus each kind's
    best-dense-score quartiles."""
    kinds = sorted({r.kind for r in records})
    report = {
        "questions": {kind: sum(r.kind == kind for r in records) for kind in kinds},
        "best_dense_quartiles": {
            kind: [
                round(float(q), 3)
                for q in np.percentile([r.best_dense for r in records if r.kind == kind], [25, 50, 75])
            ]
            for kind in kinds
        },
        "configured": {
            "min_dense_score": configured.min_dense,
            "min_dense_with_agreement": configured.min_dense_with_agreement,
            "min_question_coverage": configured.min_coverage,
            **abstention_at(records, configured),
        },
        "calibrated": calibrate(records),
    }
    unanswerable_kinds = [k for k in kinds if k != ANSWERABLE]
    if len(unanswerable_kinds) > 1:
        report["calibrated_per_kind"] = {
            kind: calibrate([r for r in records if r.answerable or r.kind == kind]) for kind in unanswerable_kinds
        }
    return report


def answers_markdown(report: dict) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in report["questions"].items())
    lines = [
        "## Answers and abstention",
        "",
        f"Questions: {counts}. Best dense score quartiles: "
        + "; ".join(f"{k} {v}" for k, v in report["best_dense_quartiles"].items())
        + ".",
        "",
        "| calibrated on | min_dense_score | answered (answerable) | abstained (unanswerable) | abstention precision |",
        "|---|---|---|---|---|",
    ]
    rows = [("configured", report["configured"]), ("all unanswerable", report["calibrated"])]
    rows += [(kind, rates) for kind, rates in report.get("calibrated_per_kind", {}).items()]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['min_dense_score']} | {r['answered_answerable']:.3f} | {r['abstention_recall']:.3f} | "
            f"{r['abstention_precision']:.3f} |"
        )
    goal = report["calibrated"]
    lines += [
        "",
        f"Goal ({goal['goal']:.0%} each) over all unanswerable questions: {'met' if goal['goal_met'] else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"
