"""Ranking quality of the derived int8 embedding model against the packaged one.

Per dataset (BEIR layout): every document is parsed and chunked as ingestion does (plain text,
title prefixed, default chunk sizes), every chunk and query is embedded by both models, and dense
retrieval is exact (all chunks scored, a document ranked by its best chunk), so the figures
compare the models alone: no HNSW, no fusion, no service in between. Reports nDCG@10 and
recall@100 per model, their change, and the cosine between the two models' vectors of each text.

The derived model is kept as a default only if, on every dataset, nDCG@10 moves by at most 0.005
and recall@100 by at most 0.01, and the mean cosine is at least 0.99.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT
from services.cli.evaluate import load_dataset
from services.common.metrics import ranked_run, scores
from services.common.tokenizer import packaged_tokenizer_path, token_counter
from services.embed.catalogue import INT8, PACKAGED, known_model, known_model_path
from services.embed.model import EmbeddingModel
from services.ingest.chunker import chunk_document
from services.ingest.parsing.registry import parse

DATASETS = [ROOT.parent / "shared" / "datasets" / name for name in ("dbpedia-5k", "arcd-dev")]
NDCG_MOVE, RECALL_MOVE, MEAN_COSINE = 0.005, 0.01, 0.99


def load_model(name: str) -> EmbeddingModel:
    model = EmbeddingModel(
        known_model_path(name),
        packaged_tokenizer_path(),
        name,
        one_text_per_run=known_model(name).one_text_per_run,
    )
    model.load()
    return model


def chunks_of(corpus: list[dict], count) -> tuple[list[str], list[str]]:
    """(document id, embedded text) of every chunk, as ingestion makes them."""
    doc_ids, texts = [], []
    for doc in corpus:
        parsed = parse(doc.get("text", "").encode(), content_type="text/plain", title=doc.get("title", ""))
        for draft in chunk_document(parsed, count):
            doc_ids.append(str(doc["_id"]))
            texts.append(draft.embed_text)
    return doc_ids, texts


def embed_all(model: EmbeddingModel, texts: list[str], budget: int = 1024) -> tuple[np.ndarray, float, int]:
    """Vectors in the texts' order, in length-sorted batches of `budget` padded tokens; seconds; tokens."""
    encodings = model.tokenize(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    vectors = np.zeros((len(texts), model.dimension), dtype=np.float32)
    started, start = time.perf_counter(), 0
    while start < len(order):
        end = start + 1  # sorted by length: the text added last sets the padded width
        while end < len(order) and (end - start + 1) * len(encodings[order[end]].ids) <= budget:
            end += 1
        batch = order[start:end]
        vectors[batch] = model.embed_encodings([encodings[i] for i in batch])
        start = end
    return vectors, time.perf_counter() - started, sum(len(e.ids) for e in encodings)


def dense_scores(queries: np.ndarray, chunks: np.ndarray, doc_ids: list[str], query_ids: list[str]) -> dict:
    similarity = queries @ chunks.T
    run = {}
    for row, query_id in enumerate(query_ids):
        best = np.argsort(-similarity[row], kind="stable")
        ranking = list(dict.fromkeys(doc_ids[i] for i in best))[:100]
        run[query_id] = ranked_run(ranking)
    return run


def compare(folder: Path, models: dict[str, EmbeddingModel], count) -> dict:
    dataset = load_dataset(folder)
    doc_ids, chunk_texts = chunks_of(dataset.corpus, count)
    query_ids = list(dataset.queries)
    query_texts = [dataset.queries[q] for q in query_ids]
    result = {"dataset": dataset.name, "chunks": len(chunk_texts), "queries": len(query_ids), "models": {}}
    vectors = {}
    for name, model in models.items():
        chunk_vectors, seconds, tokens = embed_all(model, chunk_texts)
        query_vectors, _, _ = embed_all(model, query_texts)
        vectors[name] = np.concatenate([chunk_vectors, query_vectors])
        measured = scores(dataset.qrels, dense_scores(query_vectors, chunk_vectors, doc_ids, query_ids))
        result["models"][name] = {
            "ndcg@10": round(measured["ndcg@10"], 4),
            "recall@100": round(measured["recall@100"], 4),
            "chunk_tokens_per_s": round(tokens / seconds),
        }
    cosine = (vectors[PACKAGED] * vectors[INT8]).sum(axis=1)
    packaged, derived = result["models"][PACKAGED], result["models"][INT8]
    result["ndcg@10_change"] = round(derived["ndcg@10"] - packaged["ndcg@10"], 4)
    result["recall@100_change"] = round(derived["recall@100"] - packaged["recall@100"], 4)
    result["cosine"] = {"mean": round(float(cosine.mean()), 4), "min": round(float(cosine.min()), 4)}
    result["kept"] = (
        abs(result["ndcg@10_change"]) <= NDCG_MOVE
        and abs(result["recall@100_change"]) <= RECALL_MOVE
        and result["cosine"]["mean"] >= MEAN_COSINE
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", type=Path, default=DATASETS)
    args = parser.parse_args()
    models = {name: load_model(name) for name in (PACKAGED, INT8)}
    count = token_counter(models[PACKAGED].tokenizer)
    results = [compare(folder, models, count) for folder in args.datasets]
    print(f"{'dataset':12} {'model':24} {'nDCG@10':>8} {'R@100':>8} {'chunk tokens/s':>15}")
    for r in results:
        for name, m in r["models"].items():
            rate = m["chunk_tokens_per_s"]
            print(f"{r['dataset']:12} {name:24} {m['ndcg@10']:8.4f} {m['recall@100']:8.4f} {rate:15}")
        print(
            f"{r['dataset']:12} change: nDCG@10 {r['ndcg@10_change']:+.4f} (at most ±{NDCG_MOVE}), recall@100 "
            f"{r['recall@100_change']:+.4f} (±{RECALL_MOVE}); cosine mean {r['cosine']['mean']:.4f} "
            f"(≥ {MEAN_COSINE}), min {r['cosine']['min']:.4f} over {r['chunks'] + r['queries']} texts"
        )
    verdict = all(r["kept"] for r in results)
    print(f"verdict: {INT8} {'passes' if verdict else 'fails'} the rule for a default model")
    print(json.dumps({"datasets": results, "passes": verdict}))


if __name__ == "__main__":
    main()
