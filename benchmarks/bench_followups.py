"""Follow-up questions, searched as asked and as condensed: `python -m benchmarks.bench_followups`.

Against a running `ragmesh up` (RAGMESH_DATA_DIR), dbpedia-5k is ingested into its evaluation tenant
(unchanged documents are deduplicated), then each follow-up of benchmarks/datasets/dbpedia-followups
is asked with its earlier turn (`AskRequest.history`): the manifest says what it was condensed into,
and by what (the LLM, or the rules). Both the raw follow-up and the condensed query are then searched
(top 100, one chunk per document) and scored by nDCG@10, recall@100 and MRR@10 (trec_eval). Prints a
table and one JSON line.
"""

import argparse
import json
from pathlib import Path

from rag.v1 import gateway_pb2, types_pb2
from ragmesh_client import Client
from services.cli import evaluate
from services.cli.client import connect, tenant_key
from services.cli.local import data_dir
from services.common.metrics import scores

ROOT = Path(__file__).resolve().parents[1]
FOLLOWUPS = ROOT / "benchmarks" / "datasets" / "dbpedia-followups"
CORPUS = ROOT.parent / "shared" / "datasets" / "dbpedia-5k"
DEPTH = 100


def load() -> tuple[list[dict], dict[str, dict[str, int]]]:
    lines = (FOLLOWUPS / "conversations.jsonl").read_text(encoding="utf-8").split("\n")
    conversations = [json.loads(line) for line in lines if line.strip()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (FOLLOWUPS / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    return conversations, qrels


def ranking(client: Client, query: str) -> dict[str, float]:
    fusion = types_pb2.FusionParams(max_per_document=1)
    hits = client.call("Search", gateway_pb2.SearchRequest(query=query, top_k=DEPTH, fusion=fusion)).hits
    found: dict[str, float] = {}
    for rank, hit in enumerate(hits):
        found.setdefault(hit.chunk.doc_id, float(DEPTH - rank))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-ingest", action="store_true", help="dbpedia-5k is in its tenant already.")
    args = parser.parse_args()
    data = data_dir(None)
    admin = connect(data)
    corpus = evaluate.load_dataset(CORPUS)
    client = connect(data, api_key=tenant_key(admin, data, evaluate.tenant_for(corpus.name), "followups"))
    if not args.no_ingest:
        evaluate.ingest_corpus(client, corpus)
    conversations, qrels = load()
    raw, condensed, rows = {}, {}, []
    for item in conversations:
        history = [types_pb2.Turn(question=t["question"], answer=t["answer"]) for t in item["history"]]
        final = client.ask(item["question"], history=history, no_cache=True, timeout=300)
        query = final.manifest.rewritten_query or item["question"]
        raw[item["_id"]] = ranking(client, item["question"])
        condensed[item["_id"]] = ranking(client, query)
        rows.append({"id": item["_id"], "query": query, "by": final.manifest.condensed_by})
    before, after = scores(qrels, raw), scores(qrels, condensed)
    methods = sorted({r["by"] or "(as asked)" for r in rows})
    print(f"{len(rows)} follow-ups, condensed by: {', '.join(methods)}")
    print("| searched | nDCG@10 | recall@100 | MRR@10 |")
    print("|---|---|---|---|")
    for label, s in (("as asked", before), ("condensed", after)):
        print(f"| {label} | {s['ndcg@10']:.3f} | {s['recall@100']:.3f} | {s['mrr@10']:.3f} |")
    print(json.dumps({"raw": before, "condensed": after, "queries": rows}))


if __name__ == "__main__":
    main()
