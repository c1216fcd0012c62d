"""Answers that answer, measured: questions with gold answers (each a span of a judged document),
asked through the gateway, scored for correctness, citation precision and faithfulness.

- correctness: the answer holds a gold answer (both normalised: lower case, punctuation, articles
  and extra spaces removed); token F1 of answer and gold is reported beside it (it also rewards brevity);
- citation precision: of the documents an answer cites, the share that hold the question's gold answer;
- faithfulness: of the answer's sentences, the share whose cited sources hold their content words
  (at least RAGMESH_MIN_SUPPORT_OVERLAP's default, 0.6) — what the grounding check asks of an LLM.
  A citation marker left alone after a full stop is no sentence, and the sentence ragmesh adds when
  sources disagree is its own note (each claim in it is a cited sentence of its own).
"""

import json
import re
import string
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.v1 import gateway_pb2, types_pb2
from ragmesh_client import Client
from services.generate.citations import MARKER
from services.generate.conflicts import STATEMENT
from services.generate.grounding import lexical_support
from services.generate.text import content_terms, sentence_spans

MIN_SUPPORT = 0.6
ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class GoldQuestion:
    question_id: str
    question: str
    answers: list[str]
    doc_ids: list[str]


def load_questions(path: Path) -> list[GoldQuestion]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [GoldQuestion(r["_id"], r["question"], list(r["answers"]), list(r["doc_ids"])) for r in rows]


def normalise(text: str) -> str:
    text = MARKER.sub(" ", text).lower()
    text = "".join(" " if c in string.punctuation else c for c in text)
    return " ".join(ARTICLES.sub(" ", text).split())


def token_f1(answer: str, gold: str) -> float:
    a, g = normalise(answer).split(), normalise(gold).split()
    common = sum((Counter(a) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(g)
    return 2 * precision * recall / (precision + recall)


def correct(answer: str, golds: list[str]) -> bool:
    said = f" {normalise(answer)} "
    return any(f" {normalise(g)} " in said for g in golds)


def faithfulness(final: gateway_pb2.AskFinal) -> float | None:
    """Share of the answer's sentences that their cited chunks support; None for an empty answer."""
    chunks = {h.chunk.chunk_id: h.chunk.text for h in final.manifest.hits}
    sentences = []
    for start, end in sentence_spans(final.answer):
        text = MARKER.sub("", final.answer[start:end]).strip()
        if content_terms(text) and not text.startswith(STATEMENT):
            sentences.append((start, end, text))
    if not sentences:
        return None
    supported = 0
    for start, end, text in sentences:
        cited = [c.chunk_id for c in final.citations if c.answer_start < end and c.answer_end > start]
        if cited and lexical_support(text, [chunks.get(cid, "") for cid in cited]) >= MIN_SUPPORT:
            supported += 1
    return supported / len(sentences)


def ask_gold(client: Client, questions: list[GoldQuestion]) -> list[dict]:
    rows = []
    for q in questions:
        started = time.perf_counter()
        final = client.ask(q.question, no_cache=True, timeout=300)
        seconds = time.perf_counter() - started
        cited = list(dict.fromkeys(c.doc_id for c in final.citations))
        rows.append(
            {
                "question_id": q.question_id,
                "status": types_pb2.AnswerStatus.Name(final.status).removeprefix("ANSWER_STATUS_").lower(),
                "answer": final.answer,
                "correct": correct(final.answer, q.answers),
                "f1": max(token_f1(final.answer, g) for g in q.answers) if final.answer else 0.0,
                "citation_precision": (sum(d in q.doc_ids for d in cited) / len(cited)) if cited else None,
                "faithfulness": faithfulness(final),
                "seconds": round(seconds, 3),
                "provider": final.manifest.provider_model or final.manifest.provider,
                "tokens": final.manifest.usage.prompt_tokens + final.manifest.usage.completion_tokens,
            }
        )
    return rows


def summary(rows: list[dict]) -> dict:
    def mean(values):
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 4) if values else None

    answered = [r for r in rows if r["status"] != "abstained"]
    return {
        "provider": rows[0]["provider"] if rows else "",
        "questions": len(rows),
        "answered": round(len(answered) / len(rows), 4) if rows else 0.0,
        "correct": mean([r["correct"] for r in rows]),
        "correct_when_answered": mean([r["correct"] for r in answered]),
        "token_f1": mean([r["f1"] for r in rows]),
        "citation_precision": mean([r["citation_precision"] for r in answered]),
        "faithfulness": mean([r["faithfulness"] for r in answered]),
        "seconds_p50": round(float(np.percentile([r["seconds"] for r in rows], 50)), 2) if rows else 0.0,
    }


def markdown(summaries: list[dict]) -> str:
    lines = [
        "## Answer quality",
        "",
        "| provider | questions | answered | correct | correct when answered | token F1 | citation precision |"
        " faithfulness | p50 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['provider']} | {s['questions']} | {s['answered']} | {s['correct']} | {s['correct_when_answered']} | "
            f"{s['token_f1']} | {s['citation_precision']} | {s['faithfulness']} | {s['seconds_p50']} |"
        )
    return "\n".join(lines) + "\n"
