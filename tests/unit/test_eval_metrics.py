"""The evaluation harness's metrics (trec_eval through pytrec-eval) on cases worked out by hand."""

import math

from services.cli.evaluate import (
    AnswerRecord,
    Dataset,
    Gate,
    abstention_at,
    calibrate,
    held_out,
    load_dataset,
    scores,
    tenant_for,
)


def test_perfect_and_empty_runs():
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    perfect = scores(qrels, {"q1": {"a": 3.0, "b": 2.0}, "q2": {"c": 1.0}})
    assert perfect == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    assert scores(qrels, {}) == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def test_graded_ndcg_uses_the_ideal_ranking_from_the_judgments():
    qrels = {"q": {"a": 2, "b": 1, "z": 1}}  # z is judged but never retrieved
    result = scores(qrels, {"q": {"x": 3.0, "b": 2.0, "a": 1.0}})
    # trec_eval: gain = the judgment itself, discount log2(rank + 1).
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert math.isclose(result["ndcg@10"], dcg / ideal, rel_tol=1e-4)
    assert math.isclose(result["recall@100"], 2 / 3, rel_tol=1e-6)
    assert result["mrr@10"] == 0.5


def test_mrr_is_cut_at_ten():
    ranking = {f"x{i}": 100.0 - i for i in range(10)} | {"rel": 1.0}
    assert scores({"q": {"rel": 1}}, {"q": ranking})["mrr@10"] == 0.0


def test_dataset_loading_with_and_without_header(tmp_path):
    for header in ("query-id\tcorpus-id\tscore\n", ""):
        (tmp_path / "qrels").mkdir(exist_ok=True)
        (tmp_path / "qrels" / "test.tsv").write_text(header + "q1\td1\t2\nq1\td2\t0\n")
        (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "one"}\n{"_id": "q9", "text": "unjudged"}\n')
        (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "a\\u2028b"}\n')
        dataset = load_dataset(tmp_path)
        assert dataset.qrels == {"q1": {"d1": 2, "d2": 0}}
        assert dataset.queries == {"q1": "one"} and dataset.corpus[0]["text"] == "a\u2028b"
    assert tenant_for("dbpedia-5k") == "eval-dbpedia-5k"


def test_judged_queries_without_text_are_left_out_and_counted(tmp_path):
    """trec_eval's and BEIR's practice: a judged query absent from queries.jsonl (or empty) is not
    scored as 0; with many of them, every mode came out far too low."""
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "one"}\n{"_id": "q3", "text": " "}\n')
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n')
    dataset = load_dataset(tmp_path)
    assert (dataset.queries, dataset.qrels, dataset.skipped) == ({"q1": "one"}, {"q1": {"d1": 1}}, 2)
    assert scores(dataset.qrels, {"q1": {"d1": 1.0}})["ndcg@10"] == 1.0


def record(answerable, dense, abstained=False, kind="held-out"):
    kind = "answerable" if answerable else kind
    return AnswerRecord("q", kind, abstained, "UNSUPPORTED_BY_SOURCES" if abstained else "", dense, 0.5)


def test_abstention_rates_apply_the_gate_after_the_fact():
    records = [record(True, 0.6), record(True, 0.5), record(True, 0.45, abstained=True), record(False, 0.35)]
    records += [record(False, 0.2), record(False, 0.55)]
    assert abstention_at(records, 0.4) == {
        "answered_answerable": round(2 / 3, 4),
        "abstention_recall": round(2 / 3, 4),
        "abstention_precision": round(2 / 3, 4),
        "abstention_recall_held-out": round(2 / 3, 4),
    }
    everything = abstention_at(records, -1.0)
    assert everything["abstention_recall"] == 0.0 and everything["answered_answerable"] == round(2 / 3, 4)


def test_abstention_rates_under_the_whole_gate():
    def signalled(answerable, dense, agreement, coverage):
        kind = "answerable" if answerable else "out-of-domain"
        return AnswerRecord("q", kind, False, "", dense, 0.5, agreement, coverage)

    records = [signalled(True, 0.5, False, 0.2), signalled(True, 0.4, True, 0.8), signalled(True, 0.4, False, 0.8)]
    records += [signalled(False, 0.4, True, 0.3), signalled(False, 0.2, True, 1.0)]
    rates = abstention_at(records, Gate(0.45, 0.3, 0.6))
    assert rates["answered_answerable"] == round(2 / 3, 4) and rates["abstention_recall"] == 1.0


def test_calibration_picks_the_midpoint_that_separates_best():
    separable = [record(True, d) for d in (0.5, 0.6, 0.7)] + [record(False, d) for d in (0.1, 0.2, 0.3)]
    chosen = calibrate(separable)
    assert chosen["min_dense_score"] == 0.4 and chosen["goal_met"]  # the middle of the gap (0.3, 0.5)
    wide = [record(True, d) for d in (0.6, 0.61, 0.62)] + [record(False, d) for d in (0.1, 0.2, 0.3)]
    assert calibrate(wide)["min_dense_score"] == 0.45
    assert chosen["answered_answerable"] == 1.0 and chosen["abstention_recall"] == 1.0
    overlapping = [record(True, d) for d in (0.3, 0.6)] + [record(False, d) for d in (0.5, 0.2)]
    assert not calibrate(overlapping)["goal_met"]


def test_held_out_corpus_drops_every_relevant_document():
    dataset = Dataset("d", [{"_id": "a"}, {"_id": "b"}, {"_id": "c"}], {"q": "?"}, {"q": {"a": 2, "b": 0}})
    assert [doc["_id"] for doc in held_out(dataset).corpus] == ["b", "c"]
    assert held_out(dataset).name == "d-heldout"
