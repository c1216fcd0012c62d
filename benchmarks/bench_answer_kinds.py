"""What preferring the asked-for kind of sentence is worth: `python -m benchmarks.bench_answer_kinds`.

Against a running `ragmesh up` (RAGMESH_DATA_DIR) with dbpedia-5k in its evaluation tenant: each
dbpedia-qa question is searched as Ask searches it (top_k 8, the default fusion) and answered by the
extractive answerer in this process, with the generate service's default settings, three ways:
as shipped; without the answer-kind bonus (a person for "who", a place for "where", a date for
"when", a number for "how many"); and without that bonus or the question terms read in the rest of a
sentence's chunk. Reports, for each, the share answered, correct (the answer holds a gold answer,
normalised), its first sentence correct, and citation precision (cited documents that hold the gold answer).
"""

import json
from pathlib import Path

from rag.v1 import gateway_pb2
from services.cli import answer_quality, evaluate
from services.cli.client import connect, tenant_key
from services.cli.local import data_dir
from services.common.config import GenerateSettings
from services.generate import extractive
from services.generate.confidence import Gate

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "datasets" / "dbpedia-qa" / "questions.jsonl"
TOP_K = 8
VARIANTS = {
    "as shipped": (extractive.TYPE_BONUS, extractive.CONTEXT_WEIGHT),
    "no answer-kind bonus": (0.0, extractive.CONTEXT_WEIGHT),
    "neither kind nor chunk context": (0.0, 0.0),
}


def score(questions, hits_by_question, s: GenerateSettings) -> dict:
    gate = Gate(s.min_dense_score, s.min_dense_with_agreement, s.min_question_coverage)
    answered, correct, first, precision = 0, 0, 0, []
    for q in questions:
        answer = extractive.extract_answer(
            q.question, hits_by_question[q.question_id], s.max_answer_sentences, gate, s.min_sentence_overlap
        )
        if not answer.text:
            continue
        answered += 1
        correct += answer_quality.correct(answer.text, q.answers)
        first += answer_quality.correct(answer.pieces[0], q.answers)
        cited = list(dict.fromkeys(c.doc_id for c in answer.citations))
        precision.append(sum(d in q.doc_ids for d in cited) / len(cited))
    n = len(questions)
    return {
        "answered": round(answered / n, 4),
        "correct": round(correct / n, 4),
        "first_sentence_correct": round(first / n, 4),
        "citation_precision": round(sum(precision) / len(precision), 4) if precision else None,
    }


def main() -> None:
    data = data_dir(None)
    client = connect(data, api_key=tenant_key(connect(data), data, evaluate.tenant_for("dbpedia-5k"), "bench-kinds"))
    questions = answer_quality.load_questions(QUESTIONS)
    hits = {
        q.question_id: list(client.call("Search", gateway_pb2.SearchRequest(query=q.question, top_k=TOP_K)).hits)
        for q in questions
    }
    settings = GenerateSettings()
    results = {}
    for name, (bonus, context) in VARIANTS.items():
        extractive.TYPE_BONUS, extractive.CONTEXT_WEIGHT = bonus, context
        results[name] = score(questions, hits, settings)
    print(f"{len(questions)} questions")
    print("| extractive answerer | answered | correct | first sentence correct | citation precision |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        shares = (r["answered"], r["correct"], r["first_sentence_correct"], r["citation_precision"])
        print(f"| {name} | {' | '.join(str(x) for x in shares)} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
