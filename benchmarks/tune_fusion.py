"""Choose the default fusion on judged data, and check it on queries it was not tuned on.

Fetches each retriever's candidates once per query through the gateway (dense-only and
lexical-only searches of the evaluation tenant made by `ragmesh eval`), then replays every
fusion setting offline with the same pure functions retrieve uses. Queries are split in two
folds by a hash of their id: a setting picked on one fold is scored on the other.
"""

import argparse
import hashlib
import itertools
from pathlib import Path

from rag.v1 import gateway_pb2, types_pb2
from services.cli import evaluate
from services.cli.client import Client, client_for
from services.retrieve.backends.base import EngineHit
from services.retrieve.fusion import cap_per_document, fuse

GRID = [("rrf", w, k) for w, k in itertools.product((0.5, 0.6, 0.7, 0.8, 0.9), (10, 30, 60))] + [
    (m, w, 0) for m in ("minmax", "zscore") for w in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
]


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


def run_for(cands, method: str, weight: float, k: float) -> dict[str, dict[str, float]]:
    run = {}
    for qid, (dense, lexical) in cands.items():
        fused = cap_per_document(fuse(dense, lexical, method, weight, k or 60.0), 1)[:100]
        run[qid] = {f.hit.chunk.doc_id: float(100 - i) for i, f in enumerate(fused)}
    return run


def fold(qid: str) -> int:
    return hashlib.sha256(qid.encode()).digest()[0] % 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=100)
    args = parser.parse_args()
    dataset = evaluate.load_dataset(args.dataset_dir)
    client = client_for(args.data_dir, evaluate.tenant_for(dataset.name))
    cands = candidates(client, dataset, args.depth)
    folds = [{q: r for q, r in dataset.qrels.items() if fold(q) == f and q in cands} for f in (0, 1)]

    def ndcg(setting, qrels):
        return evaluate.scores(qrels, run_for({q: cands[q] for q in qrels}, *setting))["ndcg@10"]

    base = {m: ndcg((m, 0.5, 0), dataset.qrels) for m in ("dense", "lexical")}
    print(f"{len(dataset.qrels)} judged queries; dense {base['dense']:.4f}, lexical {base['lexical']:.4f}")
    results = []
    for setting in GRID:
        results.append((setting, ndcg(setting, dataset.qrels), ndcg(setting, folds[0]), ndcg(setting, folds[1])))
    results.sort(key=lambda r: -r[1])
    print("method  dense_w  rrf_k   nDCG@10 (all / fold0 / fold1)")
    for (method, w, k), total, f0, f1 in results[:12]:
        print(f"{method:7s} {w:7.2f} {k:6.0f}   {total:.4f} / {f0:.4f} / {f1:.4f}")
    for train, test in ((0, 1), (1, 0)):  # result columns: setting, all, fold0, fold1
        best = max(results, key=lambda r: r[2 + train])
        single = {m: ndcg((m, 0.5, 0), folds[test]) for m in ("dense", "lexical")}
        print(
            f"tuned on fold{train}: {best[0]} -> fold{test} nDCG@10 {best[2 + test]:.4f} "
            f"(dense {single['dense']:.4f}, lexical {single['lexical']:.4f} on that fold)"
        )


if __name__ == "__main__":
    main()
