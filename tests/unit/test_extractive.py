from rag.v1 import types_pb2
from services.generate.extractive import extract_answer
from services.generate.text import sentence_spans


def hit(text, dense=0.6, doc="d1", cid="c1"):
    return types_pb2.Hit(
        chunk=types_pb2.Chunk(chunk_id=cid, doc_id=doc, text=text), dense_score=dense, dense_matched=True, score=0.03
    )


def test_answers_with_cited_supporting_sentences():
    hits = [
        hit("Red pandas eat mostly bamboo. They live in the Himalayas.", cid="c1"),
        hit("Giant pandas are bears.", dense=0.4, doc="d2", cid="c2"),
    ]
    answer = extract_answer("What do red pandas eat?", hits, 2, 0.3, 0.2)
    assert answer.status == types_pb2.ANSWER_STATUS_ANSWERED
    assert answer.text.startswith("Red pandas eat mostly bamboo. [1]")
    first = answer.citations[0]
    assert (first.chunk_id, first.doc_id, first.source_number) == ("c1", "d1", 1)
    assert answer.text[first.answer_start : first.answer_end] == "Red pandas eat mostly bamboo."
    assert 0 < answer.confidence <= 1


def test_abstains_without_sources_or_with_weak_ones():
    assert extract_answer("anything?", [], 3, 0.3, 0.2).reason == types_pb2.ABSTAIN_REASON_NO_RELEVANT_SOURCES
    weak = extract_answer("What do red pandas eat?", [hit("Red pandas eat bamboo.", dense=0.1)], 3, 0.3, 0.2)
    assert weak.status == types_pb2.ANSWER_STATUS_ABSTAINED
    assert weak.reason == types_pb2.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE
    unsupported = extract_answer("Who founded Rome?", [hit("Bamboo grows fast.", dense=0.5)], 3, 0.3, 0.2)
    assert unsupported.reason == types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES


def test_sentence_spans():
    text = "First one. Second (two)! Third? e.g. 3.5 stays"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["First one.", "Second (two)!", "Third? e.g. 3.5 stays"]
