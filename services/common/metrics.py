"""Retrieval metrics from trec_eval (pytrec-eval), shared by `ragmesh eval` and retrieve's own
promotion evaluation: nDCG@10 with graded gains (ideal ranking from the judgments), recall@100 over
judgments with score > 0, MRR@10. Rankings are per document."""

import numpy as np
import pytrec_eval

from rag.v1 import types_pb2

# How each evaluation mode searches: one retriever alone, or the server's default fusion.
MODES = {
    "dense": types_pb2.FusionParams(method="dense"),
    "lexical": types_pb2.FusionParams(method="lexical"),
    "hybrid": types_pb2.FusionParams(),
}


def scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean nDCG@10, recall@100 and MRR@10 over the judged queries in `qrels` (a query with no
    results scores 0)."""
    run = {q: run.get(q, {}) or {"__none__": 0.0} for q in qrels}
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in run.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        "ndcg@10": float(np.mean([full[q]["ndcg_cut_10"] for q in qrels])),
        "recall@100": float(np.mean([full[q]["recall_100"] for q in qrels])),
        "mrr@10": float(np.mean([mrr[q]["recip_rank"] for q in qrels])),
    }


def ranked_run(doc_ids: list[str]) -> dict[str, float]:
    """A ranking of documents as trec_eval scores (first = highest), each document once."""
    ranking = list(dict.fromkeys(doc_ids))
    return {doc: float(len(ranking) - i) for i, doc in enumerate(ranking)}
