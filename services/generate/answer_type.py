"""What kind of answer a question asks for (a person, a place, a date, a number), and whether a
sentence holds one: the extractive answerer prefers sentences that do."""

import re

PERSON, PLACE, DATE, NUMBER = "person", "place", "date", "number"

MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b")
FULL_DATE = re.compile(rf"\b(?:{MONTHS})\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b", re.I)
NUMBER_RE = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
    r"|hundred|thousand|million|billion|dozen)\b",
    re.I,
)
# Two or more capitalised words in a row ("Greg Abbott", "John F. Kennedy"), not opened by a function word.
NAME = re.compile(
    r"\b(?!(?:The|A|An|In|On|At|It|This|That|These|Those|He|She|His|Her|They|Its|Their|Of|And)\b)"
    r"[A-Z][a-z'’\-]+(?:\s+(?:[A-Z]\.\s*)*[A-Z][a-z'’\-]+)+"
)
PERSON_CUES = re.compile(
    r"\b(?:he|she|his|her|born|died|served|serves|elected|appointed|succeeded|mr|mrs|ms|dr|sir|president|governor"
    r"|chief|director|founder|founded by|led by|headed by|written by|directed by|invented by|minister|king|queen)\b",
    re.I,
)
PLACE_CUES = re.compile(
    r"\b(?:in|at|near|from|to)\s+(?:the\s+)?[A-Z][\w'’\-]+|\b(?:located|headquartered|based|situated|capital|city|"
    r"town|village|country|region|province|state|county)\b",
)


def expected_type(question: str) -> str | None:
    q = question.strip().lower()
    if re.match(r"(?:and\s+)?(?:who|whom|whose)\b", q) or re.search(
        r"\b(?:which|what) (?:person|people|man|woman)\b", q
    ):
        return PERSON
    if re.match(r"(?:and\s+)?when\b", q) or re.search(r"\b(?:what|which) (?:year|date|day|month|century)\b", q):
        return DATE
    if re.match(r"(?:and\s+)?where\b", q) or re.search(
        r"\b(?:which|what) (?:\w+ ){0,2}(?:city|country|town|place|state|region|continent|location)\b", q
    ):
        return PLACE
    if re.search(r"\bhow (?:many|much|long|old|far|big|tall|large)\b", q):
        return NUMBER
    return None


def holds(sentence: str, kind: str | None) -> bool:
    if kind == DATE:
        return bool(YEAR.search(sentence) or FULL_DATE.search(sentence))
    if kind == NUMBER:
        return bool(NUMBER_RE.search(sentence))
    if kind == PERSON:
        return bool(NAME.search(sentence)) and bool(PERSON_CUES.search(sentence))
    if kind == PLACE:
        return bool(PLACE_CUES.search(sentence))
    return False
