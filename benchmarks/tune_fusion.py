"""Choose the `auto` fusion's constants on judged data, and check them on data they were not tuned on.

    python -m benchmarks.tune_fusion collect DATASET_DIR... --out candidates.json [--data-dir D]
    python -m benchmarks.tune_fusion study candidates.json

`collect` fetches, once per query, each retriever's top 100 through the gateway of a running
system whose evaluation tenants `ragmesh eval` filled (dense-only and lexical-only searches), with
what the `auto` fusion knows of the query (its language, identifiers, the chunks holding them).
`study` replays every fusion setting offline with the same pure functions retrieve uses, and
cross-validates two ways: leave one dataset out (tuned on the others, scored on it), and repeated
random halvings of every dataset's queries (tuned on one half of each, scored on the other halves).
The objective is the worst dataset's gain over its better single retriever, so that no dataset is
sacrificed for another.
"""

import argparse
import itertools
import json
import random
import statistics
from pathlib import Path

import numpy as np

from rag.v1 import types_pb2
from services.cli import evaluate
from services.cli.client import client_for
from services.retrieve.adaptive import AutoPolicy, QueryFacts, fuse_auto
from services.retrieve.analysis import analyse_query
from services.retrieve.backends.base import EngineHit
from services.retrieve.fusion import cap_per_document, fuse

DEPTH = 100
SPLITS = 100
# (dense weight at the pivot, slope per unit of lexical margin, lexical candidates)
GRID = list(itertools.product((0.5, 0.6, 0.7, 0.8, 0.9), (0.0, 1.0, 1.5, 2.0, 3.0), (20, 100)))


def collect(folders: list[Path], data_dir: Path | None) -> dict:
    out = {}
    for folder in folders:
        dataset = evaluate.load_dataset(folder)
        client = client_for(data_dir, evaluate.tenant_for(dataset.name))
        rows = {}
        for qid, text in dataset.queries.items():
            lists = {}
            for method in ("dense", "lexical"):
                fusion = types_pb2.FusionParams(
                    method=method, candidate_depth=DEPTH, max_per_document=1, no_rerank=True
                )
                response = client.search(text, top_k=DEPTH, fusion=fusion)
                key = f"{method}_score"
                lists[method] = [
                    (h.chunk.doc_id, getattr(h, key)) for h in response.hits if getattr(h, f"{method}_matched")
                ]
            # The chunks holding the query's identifiers, as the `auto` fusion found them.
            auto = types_pb2.FusionParams(method="auto", candidate_depth=DEPTH, max_per_document=1, no_rerank=True)
            response = client.search(text, top_k=DEPTH, fusion=auto)
            exact_ids = set(response.fusion.decision.exact_chunk_ids)
            analysed = analyse_query(text)
            rows[qid] = {
                "text": text,
                **lists,
                "language": analysed.language,
                "analysed_as": list(analysed.languages),
                "identifiers": list(analysed.identifiers),
                "exact": [h.chunk.doc_id for h in response.hits if h.chunk.chunk_id in exact_ids],
            }
        out[dataset.name] = {"qrels": dataset.qrels, "queries": rows}
    return out


def _hits(pairs) -> list[EngineHit]:
    return [EngineHit(doc, hash(doc), 1, float(score)) for doc, score in pairs]


def ranking(row: dict, setting, language_prior: bool = True) -> list[str]:
    """Documents in the order a setting puts them: ("auto", weight, slope, lexical depth) or a
    fixed (method, dense weight, rrf k). Without the language prior, `auto` treats the embedding
    model as knowing every language and must protect the query by the scores alone."""
    dense, lexical = _hits(row["dense"]), _hits(row["lexical"])
    if setting[0] == "auto":
        _, weight, slope, depth = setting
        facts = QueryFacts(row["language"], tuple(row["analysed_as"]), tuple(row["identifiers"]), tuple(row["exact"]))
        policy = AutoPolicy(dense_weight=weight, margin_slope=slope)
        if not language_prior:
            policy = AutoPolicy(dense_languages=(), dense_weight=weight, margin_slope=slope)
        fused, _ = fuse_auto(dense, lexical[:depth], facts, policy)
    else:
        method, weight, k = setting
        fused = fuse(dense, lexical, method, weight, k)
    return [f.chunk_id for f in cap_per_document(fused, 1)[:DEPTH]]


def per_query(data: dict, setting) -> dict[str, float]:
    out = {}
    for qid, row in data["queries"].items():
        run = {doc: float(DEPTH - i) for i, doc in enumerate(ranking(row, setting, data.get("language_prior", True)))}
        out[qid] = evaluate.scores({qid: data["qrels"][qid]}, {qid: run})["ndcg@10"]
    return out


def mean(values) -> float:
    return statistics.fmean(values)


def study(candidates: dict) -> None:
    # A dataset in a language the embedding model does not know is also scored as if the model knew
    # it (a multilingual model claimed, a detection that failed): how far the scores alone protect
    # it. Reported, not tuned on: the language is what protects it.
    checks = []
    for name in list(candidates):
        languages = {row["language"] for row in candidates[name]["queries"].values()}
        if languages - {"", *AutoPolicy().dense_languages}:
            checks.append(f"{name}, scores only")
            candidates[checks[-1]] = {**candidates[name], "language_prior": False}
    names = [n for n in candidates if n not in checks]
    fixed = {"dense": ("dense", 1.0, 60.0), "lexical": ("lexical", 0.0, 60.0), "old default": ("rrf", 0.9, 10.0)}
    base = {label: {n: per_query(candidates[n], s) for n in names + checks} for label, s in fixed.items()}
    scored = {s: {n: per_query(candidates[n], ("auto", *s)) for n in names + checks} for s in GRID}
    best_single = {n: max(mean(base["dense"][n].values()), mean(base["lexical"][n].values())) for n in names}

    def objective(setting, queries: dict[str, list[str]]) -> float:
        gains = []
        for n in queries:
            single = max(mean(base[m][n][q] for q in queries[n]) for m in ("dense", "lexical"))
            gains.append(mean(scored[setting][n][q] for q in queries[n]) - single)
        return min(gains) + 0.1 * mean(gains)

    everything = {n: list(candidates[n]["queries"]) for n in names}
    print("dataset      queries  dense   lexical  old default")
    for n in names:
        print(
            f"{n:12s} {len(everything[n]):7d}  " + "  ".join(f"{mean(base[label][n].values()):.4f}" for label in fixed)
        )
    print("\nauto: weight slope depth -> nDCG@10 per dataset (best 10 by worst-dataset gain)")
    for setting in sorted(GRID, key=lambda s: -objective(s, everything))[:10]:
        print(f"  {setting}  " + "  ".join(f"{n} {mean(scored[setting][n].values()):.4f}" for n in names + checks))
    default = (AutoPolicy().dense_weight, AutoPolicy().margin_slope, DEPTH)
    print(f"  default {default}  " + "  ".join(f"{n} {mean(scored[default][n].values()):.4f}" for n in names + checks))
    print("\nleave one dataset out:")
    for held in names:
        others = {n: everything[n] for n in names if n != held}
        best = max(objective(s, others) for s in GRID)
        tied = [s for s in GRID if objective(s, others) == best]
        got = [mean(scored[s][held].values()) for s in tied]
        print(
            f"  {held}: {len(tied)} of {len(GRID)} settings best on the others; on {held} they score "
            f"{min(got):.4f}-{max(got):.4f} (better single {best_single[held]:.4f})"
        )
    gains: dict[str, list[float]] = {n: [] for n in names}
    for seed in range(SPLITS):
        rng = random.Random(seed)
        train, test = {}, {}
        for n in names:
            queries = list(everything[n])
            rng.shuffle(queries)
            train[n], test[n] = queries[: len(queries) // 2], queries[len(queries) // 2 :]
        chosen = max(GRID, key=lambda s: objective(s, train))
        for n in names:
            single = max(mean(base[m][n][q] for q in test[n]) for m in ("dense", "lexical"))
            gains[n].append(mean(scored[chosen][n][q] for q in test[n]) - single)
    print(f"\n{SPLITS} random halvings (tuned on one half of every dataset, scored on the other):")
    for n in names:
        g = gains[n]
        print(
            f"  {n}: gain over the better single retriever mean {mean(g):+.4f}, "
            f"p10 {np.percentile(g, 10):+.4f}, p90 {np.percentile(g, 90):+.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("datasets", type=Path, nargs="+")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--data-dir", type=Path, default=None)
    s = sub.add_parser("study")
    s.add_argument("candidates", type=Path)
    args = parser.parse_args()
    if args.command == "collect":
        args.out.write_text(json.dumps(collect(args.datasets, args.data_dir)))
    else:
        study(json.loads(args.candidates.read_text()))


if __name__ == "__main__":
    main()
