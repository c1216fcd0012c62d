"""Choose the default fusion on judged data, and check it on queries it was not tuned on.

Fetches each retriever's candidates once per query through the gateway (dense-only and
lexical-only searches of the evaluation tenant made by `ragmesh eval`), then replays every
fusion setting offline with the same pure functions retrieve uses. Cross-validation: over many
random halvings of the queries, the best setting on one half is scored on the other; the
held-out gain over dense alone says whether tuning fusion helps on queries it has not seen.
"""

import argparse
import itertools
import random
import statistics
from pathlib import Path

import numpy as np

from rag.v1 import gateway_pb2, types_pb2
from services.cli import evaluate
from services.cli.client import Client, client_for
from services.retrieve.backends.base import EngineHit
from services.retrieve.fusion import cap_per_document, fuse

WEIGHTS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
LEXICAL_DEPTHS = (10, 20, 50, 100)  # candidates taken from BM25; dense always gives 100
# (method, dense weight, rrf k, lexical depth)
GRID = [("rrf", w, k, d) for w, k, d in itertools.product(WEIGHTS, (1, 5, 10, 20, 30, 60), LEXICAL_DEPTHS)] + [
    (m, w, 0, d) for m, w, d in itertools.product(("minmax", "zscore"), WEIGHTS, LEXICAL_DEPTHS)
]
SPLITS = 200


def candidates(client: Client, dataset: evaluate.Dataset, depth: int) -> dict[str, tuple[list, list]]:
    out = {}
    for qid, text in dataset.queries.items():
        lists = []
        for method in ("dense", "lexical"):
            fusion = types_pb2.FusionParams(method=method, candidate_depth=depth, max_per_document=1)
            response = client.call(
                "Search", gateway_pb2.SearchRequest(query=text, top_k=min(depth, 100), fusion=fusion)
            )
            key = "dense_score" if method == "dense" else "lexical_score"
            lists.append(
                [EngineHit.whole(h.chunk, getattr(h, key)) for h in response.hits if getattr(h, f"{method}_matched")]
            )
        out[qid] = tuple(lists)
    return out


def per_query_ndcg(dataset: evaluate.Dataset, cands, setting) -> dict[str, float]:
    method, weight, k, lexical_depth = setting
    out = {}
    for qid, (dense, lexical) in cands.items():
        fused = cap_per_document(fuse(dense, lexical[:lexical_depth], method, weight, k or 60.0), 1)[:100]
        run = {f.hit.chunk.doc_id: float(100 - i) for i, f in enumerate(fused)}
        out[qid] = evaluate.scores({qid: dataset.qrels[qid]}, {qid: run})["ndcg@10"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=100)
    args = parser.parse_args()
    dataset = evaluate.load_dataset(args.dataset_dir)
    client = client_for(args.data_dir, evaluate.tenant_for(dataset.name))
    cands = candidates(client, dataset, args.depth)
    dense = per_query_ndcg(dataset, cands, ("dense", 0.5, 0, 100))
    lexical = per_query_ndcg(dataset, cands, ("lexical", 0.5, 0, 100))
    scored = {setting: per_query_ndcg(dataset, cands, setting) for setting in GRID}
    mean = {setting: statistics.fmean(s.values()) for setting, s in scored.items()}
    print(
        f"{len(cands)} judged queries; dense {statistics.fmean(dense.values()):.4f}, "
        f"lexical {statistics.fmean(lexical.values()):.4f}; {len(GRID)} fusion settings"
    )
    print("method  dense_w  rrf_k  lexical_depth   nDCG@10")
    for setting in sorted(GRID, key=lambda s: -mean[s])[:12]:
        method, w, k, depth = setting
        print(f"{method:7s} {w:7.2f} {k:6.0f} {depth:14d}   {mean[setting]:.4f}")
    queries, gains = list(cands), []
    for seed in range(SPLITS):
        random.Random(seed).shuffle(queries)
        half = len(queries) // 2
        for train, test in ((queries[:half], queries[half:]), (queries[half:], queries[:half])):
            best = max(GRID, key=lambda s: statistics.fmean(scored[s][q] for q in train))
            gains.append(statistics.fmean(scored[best][q] - dense[q] for q in test))
    print(
        f"tuned on one half, scored on the other ({SPLITS} random halvings): nDCG@10 gain over dense "
        f"mean {statistics.fmean(gains):+.4f}, p10 {np.percentile(gains, 10):+.4f}, p90 {np.percentile(gains, 90):+.4f}"
    )


if __name__ == "__main__":
    main()
