"""Citation markers in an answer: [n] or [n, m], mapped to the sources that were given."""

import re

MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
# "... end. [1]" -> "... end [1]." so that the marker stays with its sentence.
MARKER_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")


def attach_trailing_markers(text: str) -> str:
    return MARKER_AFTER_STOP.sub(r"\2\1", text)


def split_citations(sentence: str, valid: set[int]) -> tuple[str, list[int], int]:
    """(sentence without markers, cited numbers that are valid in order, markers to unknown sources)."""
    numbers: list[int] = []
    invalid = 0
    for match in MARKER.finditer(sentence):
        for part in match.group(1).split(","):
            number = int(part)
            if number in valid:
                if number not in numbers:
                    numbers.append(number)
            else:
                invalid += 1
    bare = MARKER.sub("", sentence)
    bare = re.sub(r"\s+([.!?,;:])", r"\1", bare).strip()
    bare = re.sub(r"([.!?])[.!?]+$", r"\1", bare)  # "end. [2]." leaves two stops
    return bare, numbers, invalid


def with_markers(sentence: str, numbers: list[int]) -> str:
    """The sentence with its citations before the final punctuation."""
    if not numbers:
        return sentence
    marks = "".join(f"[{n}]" for n in numbers)
    if sentence and sentence[-1] in ".!?":
        return f"{sentence[:-1]} {marks}{sentence[-1]}"
    return f"{sentence} {marks}"
