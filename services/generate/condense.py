"""A follow-up question ("and who came before him?") as a standalone search query: by rules that
carry the previous turn's entities and topic words, or by the LLM, whose rewrite is checked and
replaced by the rules' when it does not hold up."""

import re

from rag.v1 import types_pb2
from services.generate.text import STOPWORDS, WORD, content_terms, sentence_spans

# Words that point back at something said before.
REFERRING = frozenset(
    "he him his she her hers it its they them their theirs this that these those there one ones former latter".split()
)
OPENERS = ("and ", "and,", "what about", "how about", "also ", "but ", "or ", "then ", "so ")
# Capitalised words that open questions or sentences without naming anything.
NOT_NAMES = frozenset(
    """who whom whose what when where which why how is are was were did do does can could should would will the a
    an in on at of for and but or and also then so if it its this that these those there he she they his her their
    i you we my your our tell give show list name please""".split()
)
NAME = re.compile(r"[A-Z][\w'’\-.]*[\w]|[A-Z]")
CONNECTORS = frozenset({"of", "de", "del", "von", "van", "da", "du", "la", "le", "the", "y"})
MAX_CARRIED_TERMS = 8


def needs_context(question: str) -> bool:
    """A question that refers back (a pronoun, "and …", "what about …") or names too little alone."""
    words = [w.lower() for w in WORD.findall(question)]
    if any(w in REFERRING for w in words):
        return True
    if question.strip().lower().startswith(OPENERS):
        return True
    return len(content_terms(question)) < 2


def entities(text: str) -> list[str]:
    """Runs of capitalised words ("Greg Abbott", "Secret Intelligence Service", "MI6"), joined by
    small connectors ("Bank of England"), in order of appearance, the question words left out."""
    tokens = re.findall(r"[\w'’\-.]+|[^\w\s]", text)
    found, run, pending = [], [], []
    for token in [*tokens, "."]:
        word = token.strip(".")
        if word and NAME.fullmatch(word) and word.lower() not in NOT_NAMES:
            run += pending + [word]
            pending = []
        elif run and token.lower() in CONNECTORS:
            pending.append(token)
        else:
            if run:
                found.append(" ".join(run))
            run, pending = [], []
    seen, unique = set(), []
    for name in found:
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return unique


CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def first_sentence(text: str) -> str:
    bare = CITATION.sub("", text)
    spans = sentence_spans(bare)
    return bare[spans[0][0] : spans[0][1]] if spans else ""


def rule_rewrite(history: list[types_pb2.Turn], question: str) -> str:
    """The question followed by what it leaves out of the previous turn: the names in its question
    and in the first sentence of its answer (unless the question names something itself: "what
    about Oklahoma?" replaces them), then the topic words of its question."""
    if not history or not needs_context(question):
        return question.strip()
    last = history[-1]
    asked_before = last.query or last.question
    present = {w.lower() for w in WORD.findall(question)}
    names_before = entities(asked_before) + entities(first_sentence(last.answer))[:2]
    carried: list[str] = []
    if not entities(question):
        for name in names_before:
            if not all(part.lower() in present for part in name.split()):
                carried.append(name)
                present |= {part.lower() for part in name.split()}
    skipped = {part.lower() for name in names_before for part in name.split()}
    for word in WORD.findall(asked_before):
        low = word.lower()
        if low in STOPWORDS or low in present or low in REFERRING or low in skipped:
            continue
        if len(carried) < MAX_CARRIED_TERMS:
            carried.append(word)
            present.add(low)
    return f"{question.strip()} {' '.join(carried)}".strip()


CONDENSE_RULES = """Rewrite the last question of a conversation as one standalone question that can be understood
without the conversation: replace words like "he", "it" or "there" with what they refer to. Keep the
question's meaning; do not answer it. Reply with the standalone question only."""
CONDENSE_EXAMPLE = (
    "Conversation:\nQ: Who wrote Pride and Prejudice?\nA: Pride and Prejudice was written by Jane Austen.\n\n"
    "Last question: When was she born?",
    "When was Jane Austen born?",
)


def condense_messages(history: list[types_pb2.Turn], question: str, turns: int = 3) -> list[dict]:
    lines = []
    for turn in history[-turns:]:
        lines.append(f"Q: {turn.question.strip()}")
        if turn.answer:
            lines.append(f"A: {first_sentence(turn.answer)}")
    user = "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {question.strip()}"
    return [
        {"role": "system", "content": CONDENSE_RULES},
        {"role": "user", "content": CONDENSE_EXAMPLE[0]},
        {"role": "assistant", "content": CONDENSE_EXAMPLE[1]},
        {"role": "user", "content": user},
    ]


def checked_rewrite(text: str, history: list[types_pb2.Turn], question: str, max_chars: int = 400) -> str | None:
    """The model's rewrite if it is one plausible question that keeps the question's own terms and
    brings something of the conversation in; None otherwise (the rules' rewrite is used)."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.I).strip().strip('"').strip()
    if not line or len(line) > max_chars or "INSUFFICIENT" in line:
        return None
    rewritten = content_terms(line)
    context = set().union(*(content_terms(t.query or t.question) | content_terms(t.answer) for t in history))
    for name in entities(question):
        if not content_terms(name) <= rewritten:
            return None  # what the question itself names was lost
    if not (rewritten - content_terms(question)) & context:
        return None  # nothing of the conversation came in
    return line
