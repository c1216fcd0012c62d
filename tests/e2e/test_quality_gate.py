"""Quality gate: retrieval through the real system must not regress on dbpedia-5k (English
entities), arcd-dev (Arabic questions, which the English embedding model cannot read) and
identifiers-300 (records told apart only by an exact identifier); hybrid must never fall more than
0.005 below the better single retriever; and the abstention gate must keep answering answerable
questions and refusing out-of-domain ones on every corpus it was calibrated on: dbpedia-5k,
arcd-dev, tech-docs (a README and runbooks) and ops-30 (policies).

Thresholds sit just under the figures measured with the packaged model (README, Retrieval
quality; Answers); a change that loses quality fails CI.
"""

import json
import subprocess
import sys

import pytest
from helpers import free_port_block

from .system import System

# Ingesting and querying 5,000 documents takes minutes on two cores: more than the default 600 s allows.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

DATASET = __import__("conftest").DATASETS / "dbpedia-5k"
ARABIC = __import__("conftest").DATASETS / "arcd-dev"
BENCHMARK_SETS = __import__("conftest").ROOT / "benchmarks" / "datasets"
OUT_OF_DOMAIN = BENCHMARK_SETS / "ops-30"
IDENTIFIERS = BENCHMARK_SETS / "identifiers-300"
TECH_DOCS = BENCHMARK_SETS / "tech-docs"
# Each corpus, the dataset whose questions it cannot answer, and the floors at the configured gate:
# answerable questions answered, out-of-domain ones abstained (README, Answers).
CORPORA = {
    "dbpedia-5k": (OUT_OF_DOMAIN, 0.9, 0.9),
    # Arabic questions are ranked by BM25 alone, never embedded: no cosine to gate on, so the
    # answer's support decides (the extractive answerer answered 22 of 25 when this was set).
    "arcd-dev": (OUT_OF_DOMAIN, 0.8, 0.9),
    "tech-docs": (OUT_OF_DOMAIN, 0.75, 0.9),
    "ops-30": (DATASET, 0.9, 0.9),
}
FLOORS = {
    "dbpedia-5k": {
        "dense": {"ndcg@10": 0.51, "recall@100": 0.93, "mrr@10": 0.78},
        "lexical": {"ndcg@10": 0.40, "recall@100": 0.85, "mrr@10": 0.73},
        "hybrid": {"ndcg@10": 0.52, "recall@100": 0.94, "mrr@10": 0.80},
    },
    "arcd-dev": {
        "lexical": {"ndcg@10": 0.75, "recall@100": 0.95, "mrr@10": 0.68},
        "hybrid": {"ndcg@10": 0.77, "recall@100": 0.95, "mrr@10": 0.70},
    },
    "identifiers-300": {
        "lexical": {"ndcg@10": 0.99, "recall@100": 0.99, "mrr@10": 0.99},
        "hybrid": {"ndcg@10": 0.99, "recall@100": 0.99, "mrr@10": 0.99},
    },
}


def run_eval(system, dataset, *extra) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "eval", str(dataset), "--json", "--data-dir", str(system.data), *extra],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert out.returncode == 0, f"ragmesh eval {dataset.name} failed ({out.returncode}): {out.stderr[-3000:]}"
    (system.data / f"report-{dataset.name}.json").write_text(out.stdout)  # the figures behind a failure
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    for dataset in (DATASET, ARABIC, IDENTIFIERS):
        assert (dataset / "corpus.jsonl").exists(), f"the evaluation dataset is missing at {dataset}"
    folder = tmp_path_factory.mktemp("quality")
    system = System(folder, free_port_block()).start()
    try:
        yield {
            "dbpedia-5k": run_eval(system, DATASET, "--answers", "--unanswerable", str(OUT_OF_DOMAIN)),
            "arcd-dev": run_eval(system, ARABIC, "--answers", "--unanswerable", str(OUT_OF_DOMAIN)),
            "identifiers-300": run_eval(system, IDENTIFIERS),
            "tech-docs": run_eval(
                system, TECH_DOCS, "--modes", "hybrid", "--answers", "--unanswerable", str(OUT_OF_DOMAIN)
            ),
            "ops-30": run_eval(system, OUT_OF_DOMAIN, "--modes", "hybrid", "--answers", "--unanswerable", str(DATASET)),
        }
    finally:
        system.stop()


@pytest.fixture(scope="module")
def report(reports):
    return reports["dbpedia-5k"]


@pytest.mark.parametrize("dataset,mode", [(d, m) for d, modes in FLOORS.items() for m in modes])
def test_retrieval_quality_floor(reports, dataset, mode):
    measured = reports[dataset]["modes"][mode]
    for metric, floor in FLOORS[dataset][mode].items():
        assert measured[metric] >= floor, f"{dataset} {mode} {metric} {measured[metric]:.4f} fell below {floor}"


@pytest.mark.parametrize("dataset", FLOORS)
def test_hybrid_never_loses_to_the_better_retriever(reports, dataset):
    modes = reports[dataset]["modes"]
    for single in ("dense", "lexical"):
        assert modes["hybrid"]["ndcg@10"] >= modes[single]["ndcg@10"] - 0.005, (dataset, single)


def test_fusion_follows_the_retriever_that_can_see_the_query(reports):
    """Arabic questions are ranked by BM25 (the English model embeds them as noise); queries naming
    an exact identifier put the record holding it first."""
    arabic = reports["arcd-dev"]["modes"]
    assert arabic["hybrid"]["fusion"]["decisions"] == {"dense_blind": reports["arcd-dev"]["queries"]}
    assert arabic["dense"]["ndcg@10"] < 0.1 < arabic["hybrid"]["ndcg@10"] - 0.6
    identifiers = reports["identifiers-300"]["modes"]
    assert identifiers["hybrid"]["fusion"]["decisions"]["exact_identifier"] >= 40
    assert identifiers["hybrid"]["ndcg@10"] >= identifiers["dense"]["ndcg@10"] + 0.3


def test_report_names_model_watermark_and_every_query(report):
    assert report["model_id"].startswith("all-MiniLM-L6-v2@sha256:")
    assert report["generation"].startswith("g1/all-MiniLM-L6-v2@") and report["generation"].endswith("/schema-5")
    assert report["index_watermark"] >= 5000 and report["queries"] == 40 and report["skipped_queries"] == 0
    assert report["ingest"]["documents"] == 5000 and report["ingest"]["failed"] == 0
    for mode in ("dense", "lexical", "hybrid"):
        assert set(report["modes"][mode]["latency_ms"]) == {"p50", "p95", "p99"}


def test_abstention_at_the_configured_gate(report):
    answers = report["answers"]
    assert answers["questions"] == {"answerable": 40, "held-out": 40, "out-of-domain": 30}
    configured = answers["configured"]
    assert configured["answered_answerable"] >= 0.9
    assert configured["abstention_recall_out-of-domain"] >= 0.9
    # Calibrating on out-of-domain questions separates them from the answerable ones completely.
    assert answers["calibrated_per_kind"]["out-of-domain"]["goal_met"]


@pytest.mark.parametrize("name", CORPORA)
def test_abstention_on_every_corpus(reports, name):
    _, answered_floor, abstained_floor = CORPORA[name]
    configured = reports[name]["answers"]["configured"]
    assert configured["answered_answerable"] >= answered_floor, (name, configured)
    assert configured["abstention_recall_out-of-domain"] >= abstained_floor, (name, configured)
