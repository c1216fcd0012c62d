"""Calibrate the abstention gate across corpora: `python -m benchmarks.calibrate_abstention`.

Against a running `ragmesh up` (RAGMESH_DATA_DIR), each corpus is ingested into a tenant of its own
(and again without every judged document: *held-out*), its judged questions are searched as Ask
searches them (top_k 8, the default fusion), and so are the questions of a partner dataset, which the
corpus cannot answer (*out-of-domain*). From the hits, the gate's signals are computed by the same pure
functions generate uses (services/generate/confidence.py). Then every gate on a grid is scored per
corpus by its balanced accuracy (answerable questions answered, out-of-domain ones abstained), and
the gate whose worst corpus is best wins (ties: the widest margin, then the highest bars). Held-out
questions are reported, not optimised: their corpus still holds documents close to them.
"""

import argparse
import itertools
import json
from pathlib import Path

from rag.v1 import gateway_pb2
from services.cli import evaluate
from services.cli.client import connect, tenant_key
from services.cli.local import data_dir
from services.generate.confidence import Gate, Signals, passes, signals

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
# corpus, and the dataset whose questions it cannot answer
PAIRS = (
    (SHARED / "dbpedia-5k", ROOT / "benchmarks" / "datasets" / "ops-30"),
    (SHARED / "arcd-dev", ROOT / "benchmarks" / "datasets" / "ops-30"),
    (ROOT / "benchmarks" / "datasets" / "tech-docs", ROOT / "benchmarks" / "datasets" / "ops-30"),
    (ROOT / "benchmarks" / "datasets" / "ops-30", SHARED / "dbpedia-5k"),
)
TOP_K = 8


def grid() -> list[Gate]:
    highs = [round(0.30 + 0.01 * i, 2) for i in range(31)]
    lows = [round(0.10 + 0.02 * i, 2) for i in range(21)]
    covers = [round(0.30 + 0.05 * i, 2) for i in range(15)]
    return [Gate(h, lo, c) for h, lo, c in itertools.product(highs, lows, covers) if lo <= h]


def collect(data: Path, ingest: bool = True) -> list[dict]:
    admin = connect(data)
    rows = []
    for corpus_dir, partner_dir in PAIRS:
        corpus, partner = evaluate.load_dataset(corpus_dir), evaluate.load_dataset(partner_dir)
        hidden = evaluate.held_out(corpus)
        asked = []
        for dataset, questions, kind in (
            (corpus, corpus.queries, "answerable"),
            (hidden, corpus.queries, "held-out"),
            (corpus, partner.queries, "out-of-domain"),
        ):
            key = tenant_key(admin, data_dir(data), evaluate.tenant_for(dataset.name), "calibration")
            client = connect(data, api_key=key)
            if ingest:
                evaluate.ingest_corpus(client, dataset)
            asked.append((client, questions, kind))
        for client, questions, kind in asked:
            for qid, text in questions.items():
                found = client.call("Search", gateway_pb2.SearchRequest(query=text, top_k=TOP_K))
                s = signals(text, list(found.hits), found.dense_skipped)
                rows.append(
                    {
                        "corpus": corpus.name,
                        "kind": kind,
                        "question": qid,
                        "best_dense": s.best_dense,
                        "agreement": s.agreement,
                        "coverage": s.coverage,
                        "dense_read": s.dense_read,
                    }
                )
    return rows


def rates(rows: list[dict], gate: Gate) -> dict[str, dict[str, float]]:
    out = {}
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        mine = [r for r in rows if r["corpus"] == corpus]
        result = {}
        for kind in ("answerable", "held-out", "out-of-domain"):
            of_kind = [r for r in mine if r["kind"] == kind]
            answered = [
                passes(Signals(r["best_dense"], r["agreement"], r["coverage"], r["dense_read"]), gate) for r in of_kind
            ]
            result[kind] = round(sum(answered) / len(answered), 4) if answered else 0.0
        result["balanced"] = round((result["answerable"] + 1 - result["out-of-domain"]) / 2, 4)
        out[corpus] = result
    return out


def calibrate(rows: list[dict]) -> tuple[Gate, dict]:
    def score(gate: Gate):
        per = rates(rows, gate)
        worst = min(r["balanced"] for r in per.values())
        mean = sum(r["balanced"] for r in per.values()) / len(per)
        return worst, mean, gate.min_dense, gate.min_dense_with_agreement, gate.min_coverage

    best = max(grid(), key=score)
    return best, rates(rows, best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, help="Read collected rows from this JSON file instead of searching.")
    parser.add_argument("--save", type=Path, help="Write the collected rows here.")
    parser.add_argument("--no-ingest", action="store_true", help="The corpora are in their tenants already.")
    args = parser.parse_args()
    rows = json.loads(args.rows.read_text()) if args.rows else collect(data_dir(None), not args.no_ingest)
    if args.save:
        args.save.write_text(json.dumps(rows))
    gate, per = calibrate(rows)
    print(f"best gate: {gate}")
    table(per)
    print("\nthe dense bar alone (0.45):")
    table(rates(rows, Gate(0.45, 1.0, 1.0)))
    print(json.dumps({"gate": gate.__dict__, "per_corpus": per}))


def table(per: dict) -> None:
    print("| corpus | answerable answered | held-out answered | out-of-domain answered | balanced |")
    print("|---|---|---|---|---|")
    for corpus, r in per.items():
        shares = [f"{r[k]:.3f}" for k in ("answerable", "held-out", "out-of-domain", "balanced")]
        print(f"| {corpus} | {' | '.join(shares)} |")


if __name__ == "__main__":
    main()
