"""Scoring answers against gold answers: correctness, token F1, citation precision, faithfulness."""

import json

from rag.v1 import gateway_pb2, types_pb2
from services.cli.answer_quality import correct, faithfulness, load_questions, normalise, summary, token_f1

CHUNK = "Gregory Wayne Abbott (born November 13, 1957) is the 48th Governor of Texas. He was Attorney General."


def final(answer: str, cited: list[tuple[int, int]], chunk_text: str = CHUNK) -> gateway_pb2.AskFinal:
    hit = types_pb2.Hit(chunk=types_pb2.Chunk(chunk_id="c1", doc_id="abbott", text=chunk_text))
    citations = [types_pb2.Citation(chunk_id="c1", doc_id="abbott", answer_start=s, answer_end=e) for s, e in cited]
    return gateway_pb2.AskFinal(answer=answer, citations=citations, manifest=types_pb2.AnswerManifest(hits=[hit]))


def test_correct_when_the_answer_holds_a_gold_answer_normalised():
    assert normalise("The 48th Governor [1]!") == "48th governor"
    assert correct("Greg Abbott is the 48th Governor of Texas [1].", ["Gregory Wayne Abbott", "Greg Abbott"])
    assert not correct("Rick Perry was governor [1].", ["Greg Abbott"])
    # Whole words only: "1957" is not found in "19570".
    assert not correct("In 19570.", ["1957"])


def test_token_f1_rewards_a_short_exact_answer():
    assert token_f1("Greg Abbott", "Greg Abbott") == 1.0
    assert round(token_f1("Greg Abbott is the governor", "Greg Abbott"), 4) == round(2 * 0.5 * 1 / 1.5, 4)
    assert token_f1("Rick Perry", "Greg Abbott") == 0.0


def test_faithfulness_counts_sentences_their_cited_chunk_holds():
    quoted = "Gregory Wayne Abbott (born November 13, 1957) is the 48th Governor of Texas."
    invented = "He was born in Dallas."
    answer = f"{quoted} [1] {invented} [1]"
    second = len(quoted) + 5
    assert faithfulness(final(answer, [(0, len(quoted)), (second, second + len(invented))])) == 0.5
    # A marker left alone after the last full stop is not a sentence; an uncited sentence is unsupported.
    assert faithfulness(final(f"{quoted} [1]", [(0, len(quoted))])) == 1.0
    assert faithfulness(final(quoted, [])) == 0.0
    assert faithfulness(final("", [])) is None


def test_the_statement_that_sources_disagree_is_not_judged():
    quoted = "Gregory Wayne Abbott (born November 13, 1957) is the 48th Governor of Texas."
    answer = f"{quoted} [1] The sources disagree: 48th in [1], dated 2020-01-01 and 47th in [2]."
    assert faithfulness(final(answer, [(0, len(quoted))])) == 1.0


def test_summary_and_questions_file(tmp_path):
    path = tmp_path / "q.jsonl"
    row = {"_id": "q1", "question": "Who?", "answers": ["Greg Abbott"], "doc_ids": ["abbott"]}
    path.write_text(json.dumps(row) + "\n\n")
    [question] = load_questions(path)
    assert (question.question_id, question.answers, question.doc_ids) == ("q1", ["Greg Abbott"], ["abbott"])
    rows = [
        {"provider": "p", "status": "answered", "correct": True, "f1": 0.5, "citation_precision": 1.0,
         "faithfulness": 1.0, "seconds": 1.0},
        {"provider": "p", "status": "abstained", "correct": False, "f1": 0.0, "citation_precision": None,
         "faithfulness": None, "seconds": 3.0},
    ]  # fmt: skip
    s = summary(rows)
    assert (s["answered"], s["correct"], s["correct_when_answered"], s["citation_precision"]) == (0.5, 0.5, 1.0, 1.0)
    assert (s["token_f1"], s["faithfulness"], s["seconds_p50"]) == (0.25, 1.0, 2.0)
