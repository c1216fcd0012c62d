"""Sources that disagree: two sentences of different documents about the same thing (they share
most of their words) that state different values of one kind (a number, a date, a name). Pure
functions; the newer claim is the one whose document carries the later `date` metadata."""

import re
from dataclasses import dataclass

from rag.v1 import types_pb2
from services.generate.answer_type import FULL_DATE, NAME, YEAR
from services.generate.text import content_terms

NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w.]\d)")
MIN_SHARED = 0.6  # share of the two sentences' other words (all of them) they have in common
MIN_SHARED_TERMS = 2
STATEMENT = "The sources disagree:"  # opens the sentence an answer gains when its sources disagree


@dataclass(frozen=True)
class Claim:
    sentence: str
    source_number: int
    hit: types_pb2.Hit


def values(sentence: str, title: str = "") -> dict[str, set[str]]:
    """The sentence's values by kind: dates (years, full dates), other numbers, names. Values its
    document's title holds name the document's subject ("1955 Monaco Grand Prix"), not a claim."""
    found = _values(sentence)
    held = _values(title) if title else {}
    return {kind: found[kind] - held.get(kind, set()) for kind in found}


def _values(text: str) -> dict[str, set[str]]:
    dates = {m.group().lower() for m in FULL_DATE.finditer(text)} | set(YEAR.findall(text))
    years = set(YEAR.findall(text))
    numbers = {m.group().replace(",", "") for m in NUMBER.finditer(text)} - years
    names = {m.group() for m in NAME.finditer(text)}
    return {"date": dates, "number": numbers, "name": names}


def _words(sentence: str, found: dict[str, set[str]]) -> set[str]:
    """Content terms that are not themselves values."""
    values_terms = set().union(*(content_terms(v) for kind in found.values() for v in kind))
    return content_terms(sentence) - values_terms


# What must agree for two different values of a kind to be about the same thing: a figure or a date
# of the same named subject (a revision may carry its own year), a name given with the same figures.
MUST_AGREE = {"date": ("name", "number"), "number": ("name",), "name": ("date", "number")}


def _same_subject(a: types_pb2.Hit, b: types_pb2.Hit) -> bool:
    """Titles naming different years, figures or names name different subjects (the 1963 and the
    1966 Monaco Grand Prix); unless both documents are dated, when they are versions of one."""
    if _values(a.chunk.title) == _values(b.chunk.title):
        return True
    return bool(document_date(a) and document_date(b))


def disagreement(a: Claim, b: Claim) -> tuple[str, str, str, str] | None:
    """(kind, value in a, value in b, shared words) when a and b say different things about the same
    one: nearly the same words around one differing value, everything else they name the same. On
    encyclopedic text, sentences alike in form about different subjects ("X (born 1841) was the 22nd
    Governor of Texas", "Y (born 1893) …") differ in their names too, and are not a disagreement."""
    if a.hit.chunk.doc_id == b.hit.chunk.doc_id or not _same_subject(a.hit, b.hit):
        return None
    va, vb = values(a.sentence, a.hit.chunk.title), values(b.sentence, b.hit.chunk.title)
    wa, wb = _words(a.sentence, va), _words(b.sentence, vb)
    shared = wa & wb
    if len(shared) < MIN_SHARED_TERMS or len(shared) < MIN_SHARED * len(wa | wb):
        return None
    for kind in ("date", "number", "name"):
        only_a, only_b = va[kind] - vb[kind], vb[kind] - va[kind]
        if only_a and only_b:
            if any(va[other] != vb[other] for other in MUST_AGREE[kind]):
                return None
            return kind, sorted(only_a)[0], sorted(only_b)[0], " ".join(sorted(shared))
    return None


def document_date(hit: types_pb2.Hit) -> str:
    return hit.chunk.metadata.get("date", "")


def find_conflicts(chosen: list[Claim], others: list[Claim]) -> list[tuple[types_pb2.Conflict, Claim, Claim]]:
    """Conflicts between a chosen sentence and any other candidate (chosen or not), each pair once:
    the Conflict record and both claims (the caller makes sure both are in the answer)."""
    found, seen = [], set()
    for a in chosen:
        for b in [*chosen, *others]:
            key = frozenset((a.sentence, b.sentence))
            if a is b or key in seen:
                continue
            seen.add(key)
            result = disagreement(a, b)
            if result is None:
                continue
            kind, value_a, value_b, subject = result
            claims = [
                types_pb2.ConflictingClaim(
                    value=value,
                    source_number=claim.source_number,
                    doc_id=claim.hit.chunk.doc_id,
                    chunk_id=claim.hit.chunk.chunk_id,
                    quote=claim.sentence,
                    document_date=document_date(claim.hit),
                )
                for claim, value in ((a, value_a), (b, value_b))
            ]
            dated = [c for c in claims if c.document_date]
            if dated:
                max(dated, key=lambda c: c.document_date).newest = True
            found.append((types_pb2.Conflict(subject=subject, kind=kind, claims=claims), a, b))
    return found


def describe(conflict: types_pb2.Conflict) -> str:
    """One sentence naming both claims with their sources and dates, the newer marked."""
    parts = []
    for claim in conflict.claims:
        date = f", dated {claim.document_date}" + (", the newer" if claim.newest else "") if claim.document_date else ""
        parts.append(f"{claim.value} in [{claim.source_number}]{date}")
    return f"{STATEMENT} {' and '.join(parts)}."
