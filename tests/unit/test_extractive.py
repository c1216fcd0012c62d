import pytest

from rag.v1 import types_pb2
from services.generate.answer_type import DATE, NUMBER, PERSON, PLACE, expected_type, holds
from services.generate.confidence import Gate, agreement, coverage, passes, report, signals
from services.generate.conflicts import Claim, describe, disagreement, find_conflicts
from services.generate.extractive import extract_answer
from services.generate.text import sentence_spans

GATE = Gate(0.3, 0.3, 1.0)


def hit(text, dense=0.6, doc="d1", cid="c1", lexical_rank=0, dense_rank=1, date="", title=""):
    return types_pb2.Hit(
        chunk=types_pb2.Chunk(
            chunk_id=cid, doc_id=doc, text=text, title=title, metadata={"date": date} if date else {}
        ),
        dense_score=dense,
        dense_matched=True,
        dense_rank=dense_rank,
        lexical_matched=lexical_rank > 0,
        lexical_rank=lexical_rank,
        score=0.03,
    )


def test_answers_with_cited_supporting_sentences():
    hits = [
        hit("Red pandas eat mostly bamboo. They live in the Himalayas.", cid="c1"),
        hit("Giant pandas are bears.", dense=0.4, doc="d2", cid="c2", dense_rank=2),
    ]
    answer = extract_answer("What do red pandas eat?", hits, 2, GATE, 0.2)
    assert answer.status == types_pb2.ANSWER_STATUS_ANSWERED
    assert answer.text.startswith("Red pandas eat mostly bamboo. [1]")
    first = answer.citations[0]
    assert (first.chunk_id, first.doc_id, first.source_number) == ("c1", "d1", 1)
    assert answer.text[first.answer_start : first.answer_end] == "Red pandas eat mostly bamboo."
    assert 0 < answer.confidence <= 1
    assert answer.signals.best_dense == 0.6 and answer.signals.answer_support == 1.0
    assert not answer.notes and not answer.conflicts


def test_abstains_without_sources_or_with_weak_ones():
    assert extract_answer("anything?", [], 3, GATE, 0.2).reason == types_pb2.ABSTAIN_REASON_NO_RELEVANT_SOURCES
    weak = extract_answer("What do red pandas eat?", [hit("Red pandas eat bamboo.", dense=0.1)], 3, GATE, 0.2)
    assert weak.status == types_pb2.ANSWER_STATUS_ABSTAINED
    assert weak.reason == types_pb2.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE
    assert weak.signals.best_dense == 0.1
    unsupported = extract_answer("Who founded Rome?", [hit("Bamboo grows fast.", dense=0.5)], 3, GATE, 0.2)
    assert unsupported.reason == types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES


def test_below_the_dense_bar_an_answer_needs_retrievers_that_agree_and_cover_the_question():
    gate = Gate(0.45, 0.3, 0.6)
    text = "Run make test: it runs lint, unit, integration and end-to-end tests."
    agreed = [hit(text, dense=0.44, lexical_rank=1)]
    assert signals("How do I run the tests?", agreed).agreement
    assert extract_answer("How do I run the tests?", agreed, 3, gate, 0.2).status == types_pb2.ANSWER_STATUS_ANSWERED
    # The same chunk, but BM25 ranked it fourth: dense alone at 0.44 is not enough.
    disagreed = [hit(text, dense=0.44, lexical_rank=4)]
    refused = extract_answer("How do I run the tests?", disagreed, 3, gate, 0.2)
    assert refused.reason == types_pb2.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE
    # Agreement on a chunk that holds too little of the question; or a dense score under the low bar.
    assert not passes(signals("How do I rotate the vault keys?", agreed), gate)
    assert not passes(signals("How do I run the tests?", [hit(text, dense=0.29, lexical_rank=1)]), gate)


def test_a_search_that_skipped_the_dense_side_leaves_the_decision_to_the_answers_support():
    """A lexical search, or a question auto ranked by BM25 alone (a language the embedding model
    cannot read), has no cosine to judge by: the gate lets it through, and the answerer answers
    only from sentences that hold the question's words. Hits the dense side did not rank, when it
    was searched, are a weak retrieval: judged by the cosine as ever."""
    gate = Gate(0.45, 0.3, 0.6)
    text = "Run make test: it runs lint, unit, integration and end-to-end tests."
    lexical_only = [
        types_pb2.Hit(
            chunk=types_pb2.Chunk(chunk_id="c1", doc_id="d1", text=text),
            lexical_matched=True,
            lexical_rank=1,
            score=7.5,
        )
    ]
    read = signals("How do I run the tests?", lexical_only, dense_skipped=True)
    assert (read.dense_read, read.best_dense) == (False, 0.0) and passes(read, gate)
    assert report(read).dense_skipped
    answered = extract_answer("How do I run the tests?", lexical_only, 3, gate, 0.2, dense_skipped=True)
    assert answered.status == types_pb2.ANSWER_STATUS_ANSWERED and "make test" in answered.text
    unsupported = extract_answer("Who painted the Mona Lisa?", lexical_only, 3, gate, 0.2, dense_skipped=True)
    assert unsupported.reason == types_pb2.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES
    # The dense side searched, none of its hits returned: a weak retrieval, refused by the gate.
    searched = extract_answer("How do I run the tests?", lexical_only, 3, gate, 0.2)
    assert searched.reason == types_pb2.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE
    assert not report(signals("How do I run the tests?", lexical_only)).dense_skipped


def test_signals_read_the_top_hits():
    hits = [hit("Alpha beta.", doc="a", dense_rank=2, lexical_rank=1), hit("Gamma.", doc="b", dense_rank=1)]
    assert not agreement(hits)  # dense's first document was not found by BM25
    assert agreement([hit("Gamma.", doc="b", dense_rank=1, lexical_rank=3)])
    assert coverage("alpha gamma delta?", hits) == pytest.approx(2 / 3)
    assert coverage("Alpha?", [hit("Nothing here.", title="Alpha")]) == 1.0


def test_questions_ask_for_kinds_of_answers():
    assert expected_type("Who is the governor of Texas?") == PERSON
    assert expected_type("and who came before him?") == PERSON
    assert expected_type("In which UK city are the headquarters of the MI6?") == PLACE
    assert expected_type("Where do red pandas live?") == PLACE
    assert expected_type("When was the Eiffel Tower completed?") == DATE
    assert expected_type("In what year did it open?") == DATE
    assert expected_type("How many moons does Mars have?") == NUMBER
    assert expected_type("What is bamboo?") is None
    assert holds("Greg Abbott is an American politician, the 48th governor of Texas.", PERSON)
    assert not holds("The Governor of Texas is the chief executive of the state.", PERSON)
    assert holds("Its headquarters are at Vauxhall Cross in London.", PLACE)
    assert holds("It was completed in 1889.", DATE) and not holds("It is tall.", DATE)


def test_the_sentence_of_the_asked_for_kind_is_preferred():
    office = "The Governor of Texas is the chief executive of the government of Texas and the head of its cabinet."
    person = "Greg Abbott is an American politician who has served as the governor of Texas since 2015."
    hits = [hit(office, dense=0.7, doc="office", cid="o"), hit(person, dense=0.6, doc="abbott", cid="a", dense_rank=2)]
    answer = extract_answer("Who is the governor of Texas?", hits, 1, GATE, 0.2)
    assert answer.text == f"{person} [2]" and answer.citations[0].doc_id == "abbott"
    mi6 = [
        hit("Sir Richard Dearlove was chief of the MI6 from 1999 to 2004.", doc="dearlove", cid="d"),
        hit("The MI6 has its headquarters at Vauxhall Cross in London.", dense=0.5, doc="mi6", cid="m", dense_rank=2),
    ]
    where = extract_answer("In which UK city are the headquarters of the MI6?", mi6, 1, GATE, 0.2)
    assert "London" in where.text and where.citations[0].doc_id == "mi6"


def test_sources_that_disagree_are_both_quoted_and_the_newer_marked():
    old = hit("Employees get 20 days of paid leave per year.", doc="policy-2023", cid="p1", date="2023-01-10")
    new = hit(
        "Employees get 25 days of paid leave per year.", doc="policy-2024", cid="p2", date="2024-03-01", dense_rank=2
    )
    answer = extract_answer("How many days of paid leave do employees get?", [old, new], 1, GATE, 0.2)
    assert answer.status == types_pb2.ANSWER_STATUS_ANSWERED
    assert answer.notes == [types_pb2.ANSWER_NOTE_CONFLICTING_SOURCES]
    assert {c.doc_id for c in answer.citations} == {"policy-2023", "policy-2024"}
    [conflict] = answer.conflicts
    assert conflict.kind == "number"
    assert [(c.value, c.doc_id, c.document_date, c.newest) for c in conflict.claims] == [
        ("20", "policy-2023", "2023-01-10", False),
        ("25", "policy-2024", "2024-03-01", True),
    ]
    assert answer.text.endswith(
        "The sources disagree: 20 in [1], dated 2023-01-10 and 25 in [2], dated 2024-03-01, the newer."
    )


def test_only_different_values_about_the_same_thing_are_a_disagreement():
    a = Claim("Revenue in 2023 was 12 million euros.", 1, hit("", doc="r1"))
    b = Claim("Revenue in 2023 was 14 million euros.", 2, hit("", doc="r2"))
    assert disagreement(a, b)[:3] == ("number", "12", "14")
    assert disagreement(a, Claim("The office opened 12 new desks in Lyon.", 2, hit("", doc="r3"))) is None
    assert disagreement(a, Claim("Revenue in 2023 was 12 million euros.", 2, hit("", doc="r4"))) is None
    assert disagreement(a, Claim("Revenue in 2023 was 14 million euros.", 2, hit("", doc="r1"))) is None  # same doc
    ceo_a = Claim("The chief executive of Acme is John Smith.", 1, hit("", doc="c1"))
    ceo_b = Claim("The chief executive of Acme is Mary Jones.", 2, hit("", doc="c2"))
    [(conflict, _, _)] = find_conflicts([ceo_a], [ceo_b])
    assert (
        conflict.kind == "name"
        and describe(conflict) == "The sources disagree: John Smith in [1] and Mary Jones in [2]."
    )
    opened = Claim("The bridge opened in 1931.", 1, hit("", doc="b1"))
    assert disagreement(opened, Claim("The bridge opened in 1932.", 2, hit("", doc="b2")))[:3] == (
        "date",
        "1931",
        "1932",
    )


def test_sentences_alike_about_different_subjects_are_no_disagreement():
    """DBpedia's abstracts share their form: before these cases were refused, half the answers over
    dbpedia-qa reported disagreeing sources."""
    jester = Claim("Beauford Jester (born January 12, 1893) was the 36th Governor of Texas.", 1, hit("", doc="jester"))
    sayers = Claim("Joseph Sayers (born September 23, 1841) was the 22nd Governor of Texas.", 2, hit("", doc="sayers"))
    assert disagreement(jester, sayers) is None  # the names differ: two governors
    first = Claim("The first season of the show aired on HBO from January 10, 1999.", 1, hit("", doc="s1"))
    fifth = Claim("The fifth season of the show aired on HBO from March 7, 2004.", 2, hit("", doc="s5"))
    assert disagreement(first, fifth) is None  # too few words in common: first and fifth
    race = "The {} Monaco Grand Prix was a Formula One motor race held at Monaco on May {}, {}."
    r1963 = Claim(race.format(1963, 26, 1963), 1, hit("", doc="gp63", title="1963 Monaco Grand Prix"))
    r1966 = Claim(race.format(1966, 22, 1966), 2, hit("", doc="gp66", title="1966 Monaco Grand Prix"))
    assert disagreement(r1963, r1966) is None  # the titles name two races
    # The same titles on dated documents are two versions of one: their different figures disagree.
    v1 = Claim("Staff receive 20 days of leave.", 1, hit("", doc="l23", title="Leave policy 2023", date="2023-01-10"))
    v2 = Claim("Staff receive 25 days of leave.", 2, hit("", doc="l24", title="Leave policy 2024", date="2024-03-01"))
    assert disagreement(v1, v2)[:3] == ("number", "20", "25")


def test_sentence_spans():
    text = "First one. Second (two)! Third? e.g. 3.5 stays"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["First one.", "Second (two)!", "Third? e.g. 3.5 stays"]
