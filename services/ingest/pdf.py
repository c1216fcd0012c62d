"""PDF -> text per page (pypdf): hyphenation rejoined, repeated headers/footers dropped, pages
without a text layer reported instead of silently empty."""

import io
import re
from collections import Counter

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from services.ingest.document import PROSE, DocumentError, ParsedDocument

HYPHENATED = re.compile(r"(\w)-\n(\w)")
DIGITS = re.compile(r"\d+")
PARAGRAPH_END = re.compile(r"[.!?:;)\]\"”]$")


def _page_lines(text: str) -> list[str]:
    return [line.strip() for line in HYPHENATED.sub(r"\1\2", text).split("\n") if line.strip()]


def _repeated_edges(pages: list[list[str]]) -> set[str]:
    """Lines at the top or bottom of most pages (page numbers folded): running headers and footers."""
    if len(pages) < 2:
        return set()
    edges = Counter()
    for lines in pages:
        candidates = {DIGITS.sub("#", line) for line in lines[:2] + lines[-2:]}
        edges.update(candidates)
    needed = max(2, int(0.6 * len(pages) + 0.5))
    return {line for line, n in edges.items() if n >= needed}


def _paragraphs(lines: list[str]) -> list[str]:
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


def parse_pdf(data: bytes, title: str = "") -> ParsedDocument:
    from services.ingest.parsers import _Builder, clean

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("the PDF is encrypted")
        texts = [clean(page.extract_text() or "") for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DocumentError(f"the PDF cannot be read: {exc}") from exc
    pages = [_page_lines(t) for t in texts]
    repeated = _repeated_edges(pages)
    builder = _Builder()
    empty = []
    for number, lines in enumerate(pages, start=1):
        edges = set(lines[:2] + lines[-2:])
        body = [line for line in lines if not (line in edges and DIGITS.sub("#", line) in repeated)]
        if not body:
            empty.append(number)
            continue
        for paragraph in _paragraphs(body):
            builder.add(paragraph, (), PROSE, page=number)
    if not builder.blocks:
        raise DocumentError(f"no page has a text layer ({len(pages)} pages): scanned PDFs need OCR first")
    warnings = [f"pages without text: {', '.join(map(str, empty))}"] if empty else []
    info_title = ""
    try:
        info_title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:
        info_title = ""
    return builder.build(title or clean(info_title), warnings)
