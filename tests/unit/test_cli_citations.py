"""The CLI lists each cited source once, however many answer sentences cite it."""

from rag.v1 import types_pb2
from services.cli.queries import citation_lines


def cite(number: int, doc_id: str, chunk_id: str, start: int) -> types_pb2.Citation:
    return types_pb2.Citation(source_number=number, doc_id=doc_id, chunk_id=chunk_id, answer_start=start)


def test_a_source_cited_by_several_sentences_is_listed_once():
    citations = [cite(1, "mi6.txt", "c1", 0), cite(2, "london.txt", "c7", 40), cite(1, "mi6.txt", "c1", 80)]
    assert citation_lines(citations) == ["  [1] mi6.txt  chunk c1", "  [2] london.txt  chunk c7"]


def test_two_chunks_of_one_document_are_two_sources():
    citations = [cite(1, "mi6.txt", "c1", 0), cite(2, "mi6.txt", "c2", 40)]
    assert citation_lines(citations) == ["  [1] mi6.txt  chunk c1", "  [2] mi6.txt  chunk c2"]
