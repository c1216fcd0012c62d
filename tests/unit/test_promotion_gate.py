"""The promotion gate's judgement: a candidate generation is refused when any evaluated mode is
worse than the active generation's beyond the tolerance."""

from rag.v1 import retrieve_pb2
from services.retrieve.evaluation import dataset_digest, judge


def scores(**pairs) -> list[retrieve_pb2.ModeScore]:
    return [retrieve_pb2.ModeScore(mode=m, candidate_ndcg=c, baseline_ndcg=b) for m, (c, b) in pairs.items()]


def test_a_generation_passes_unless_a_mode_is_worse_beyond_the_tolerance():
    passed, summary = judge(scores(hybrid=(0.507, 0.515), dense=(0.530, 0.520)), 0.01, "dbpedia-5k", 50)
    assert passed and summary == (
        "dbpedia-5k (50 queries): hybrid ndcg@10 0.5070 vs 0.5150; dense ndcg@10 0.5300 vs 0.5200; tolerance 0.01"
    )
    passed, summary = judge(scores(hybrid=(0.530, 0.515), dense=(0.505, 0.520)), 0.01, "dbpedia-5k", 50)
    assert not passed and "dense ndcg@10 0.5050 vs 0.5200 (worse)" in summary and "hybrid ndcg@10 0.5300" in summary


def test_a_negative_tolerance_demands_an_improvement():
    assert not judge(scores(hybrid=(0.5, 0.5)), -0.01, "d", 1)[0]
    assert judge(scores(hybrid=(0.52, 0.5)), -0.01, "d", 1)[0]


def test_the_verdict_names_exactly_the_judged_queries_it_measured():
    one = retrieve_pb2.EvaluateGenerationRequest(
        queries=[retrieve_pb2.JudgedQuery(id="q1", text="otters", relevant={"d1": 1})]
    )
    same = retrieve_pb2.EvaluateGenerationRequest()
    same.CopyFrom(one)
    graded = retrieve_pb2.EvaluateGenerationRequest()
    graded.CopyFrom(one)
    graded.queries[0].relevant["d1"] = 2
    assert dataset_digest(one) == dataset_digest(same) != dataset_digest(graded)
