"""Page text -> paragraphs: hyphenation rejoined, running headers and footers dropped. Pure."""

import re
from collections import Counter

HYPHENATED = re.compile(r"(\w)-\n(\w)")
DIGITS = re.compile(r"\d+")
PARAGRAPH_END = re.compile(r"[.!?:;)\]\"”]$")


def page_lines(text: str) -> list[str]:
    return [line.strip() for line in HYPHENATED.sub(r"\1\2", text).split("\n") if line.strip()]


def fold(line: str) -> str:
    """A line with its numbers folded, so 'Page 2 of 9' and 'Page 3 of 9' are the same line."""
    return DIGITS.sub("#", line)


def repeated_edges(pages: list[list[str]]) -> set[str]:
    """Lines at the top or bottom of most pages (numbers folded): running headers and footers."""
    if len(pages) < 2:
        return set()
    edges = Counter()
    for lines in pages:
        edges.update({fold(line) for line in lines[:2] + lines[-2:]})
    needed = max(2, int(0.6 * len(pages) + 0.5))
    return {line for line, n in edges.items() if n >= needed}


def paragraphs(lines: list[str]) -> list[str]:
    """Rejoin wrapped lines; a line ending a sentence, or a short line, closes a paragraph."""
    out, current = [], []
    width = max((len(line) for line in lines), default=0)
    for line in lines:
        current.append(line)
        if PARAGRAPH_END.search(line) or len(line) < 0.6 * width:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out
