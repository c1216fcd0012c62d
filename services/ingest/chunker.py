"""Structure-aware chunking, pure and deterministic: same document + same settings = same chunks.

Split at section, then paragraph, then sentence boundaries; code blocks and tables are split only
between lines, never inside one. Sizes are tokens of the embedding tokenizer; each chunk's
section trail (and the document title) is prefixed to the text that is embedded and indexed.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import groupby

from services.ingest.document import OCR, PROSE, PROSE_KINDS, Block, ParsedDocument

CHUNKER_VERSION = "structure-v1"
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
SPECIAL_TOKENS = 2  # [CLS] and [SEP]

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Piece:
    text: str
    start: int
    end: int
    kind: str
    tokens: int
    page: int = 0


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    text: str
    embed_text: str
    section: str
    kind: str
    char_start: int
    char_end: int
    tokens: int
    page_start: int = 0
    page_end: int = 0


def section_prefix(title: str, section: tuple[str, ...]) -> str:
    trail = [part for part in (title, *section) if part]
    return " > ".join(dict.fromkeys(trail))


def _split_sentences(text: str, start: int) -> list[tuple[str, int]]:
    out, pos = [], 0
    for match in SENTENCE_END.finditer(text):
        out.append((text[pos : match.end()].rstrip(), start + pos))
        pos = match.end()
    if pos < len(text):
        out.append((text[pos:], start + pos))
    return [(t, s) for t, s in out if t.strip()]


def _split_words(text: str, start: int, budget: int, count: TokenCounter) -> list[Piece]:
    pieces, words, offset = [], [], 0
    for match in re.finditer(r"\S+", text):
        candidate = text[offset if words else match.start() : match.end()]
        if words and count(candidate) > budget:
            piece = text[offset : words[-1]]
            pieces.append(Piece(piece, start + offset, start + words[-1], PROSE, count(piece)))
            words = []
        if not words:
            offset = match.start()
        words.append(match.end())
    if words:
        piece = text[offset : words[-1]]
        pieces.append(Piece(piece, start + offset, start + words[-1], PROSE, count(piece)))
    return pieces


def _split_lines(block: Block, budget: int, count: TokenCounter) -> list[Piece]:
    """Code and tables: whole lines only, so a row or statement is never cut."""
    pieces, lines, pos = [], [], 0
    for line in block.text.split("\n"):
        lines.append((line, pos))
        pos += len(line) + 1
    current: list[tuple[str, int]] = []
    for line, offset in lines:
        trial = "\n".join(text for text, _ in [*current, (line, offset)])
        if current and count(trial) > budget:
            text = "\n".join(t for t, _ in current)
            pieces.append(
                Piece(
                    text, block.start + current[0][1], block.start + current[0][1] + len(text), block.kind, count(text)
                )
            )
            current = []
        current.append((line, offset))
    if current:
        text = "\n".join(t for t, _ in current)
        pieces.append(
            Piece(text, block.start + current[0][1], block.start + current[0][1] + len(text), block.kind, count(text))
        )
    return pieces


def split_block(block: Block, budget: int, count: TokenCounter) -> list[Piece]:
    tokens = count(block.text)
    if tokens <= budget:
        return [Piece(block.text, block.start, block.end, block.kind, tokens, block.page)]
    if block.kind not in PROSE_KINDS:
        pieces = _split_lines(block, budget, count)
    else:
        pieces = []
        for sentence, start in _split_sentences(block.text, block.start):
            n = count(sentence)
            if n <= budget:
                pieces.append(Piece(sentence, start, start + len(sentence), PROSE, n))
            else:
                pieces.extend(_split_words(sentence, start, budget, count))
    return [replace(p, page=block.page, kind=block.kind) for p in pieces]


def _pack(pieces: list[Piece], budget: int, overlap: int) -> list[list[Piece]]:
    groups: list[list[Piece]] = []
    current: list[Piece] = []
    size = 0
    for piece in pieces:
        if current and size + piece.tokens > budget:
            groups.append(current)
            carried: list[Piece] = []
            if overlap and piece.kind in PROSE_KINDS:
                for previous in reversed(current):
                    if previous.kind not in PROSE_KINDS or sum(p.tokens for p in carried) + previous.tokens > overlap:
                        break
                    carried.insert(0, previous)
            current, size = carried, sum(p.tokens for p in carried)
        current.append(piece)
        size += piece.tokens
    if current:
        groups.append(current)
    return groups


def _kind(kinds: set[str]) -> str:
    """A chunk's content kind: its pieces' one kind; mixed, prose, or ocr when any of it was read by OCR."""
    if len(kinds) == 1:
        return next(iter(kinds))
    return OCR if OCR in kinds else PROSE


def chunk_document(
    doc: ParsedDocument, count: TokenCounter, target_tokens: int = 200, overlap_tokens: int = 24, max_tokens: int = 256
) -> list[ChunkDraft]:
    drafts: list[ChunkDraft] = []
    for section, blocks in groupby(doc.blocks, key=lambda b: b.section):
        prefix = section_prefix(doc.title, section)
        prefix_tokens = count(prefix) + 1 if prefix else 0
        budget = max(16, min(target_tokens, max_tokens - SPECIAL_TOKENS - prefix_tokens))
        pieces = [p for block in blocks for p in split_block(block, budget, count)]
        for group in _pack(pieces, budget, min(overlap_tokens, budget // 2)):
            start, end = group[0].start, group[-1].end
            text = doc.text[start:end]
            kinds = {p.kind for p in group}
            drafts.append(
                ChunkDraft(
                    ordinal=len(drafts),
                    text=text,
                    embed_text=f"{prefix}\n{text}" if prefix else text,
                    section=" > ".join(section),
                    kind=_kind(kinds),
                    char_start=start,
                    char_end=end,
                    tokens=sum(p.tokens for p in group),
                    page_start=min(p.page for p in group),
                    page_end=max(p.page for p in group),
                )
            )
    return drafts
