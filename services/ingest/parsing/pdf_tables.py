"""Tables of PDF pages (pdfplumber): each a block of rows with their header names, and the page's
other text around them in reading order."""

from services.ingest.document import PROSE, TABLE
from services.ingest.parsing.builder import one_line, table_lines


def page_with_tables(page) -> list[tuple[str, str]] | None:
    """(kind, text) segments of a pdfplumber page from top to bottom; None when it has no table."""
    tables = sorted(page.find_tables(), key=lambda t: t.bbox[1])
    if not tables:
        return None
    x0, top0, x1, bottom0 = page.bbox
    segments: list[tuple[str, str]] = []
    y = top0

    def text_between(top: float, bottom: float) -> None:
        if bottom - top > 1:
            text = page.crop((x0, top, x1, bottom), strict=False).extract_text() or ""
            segments.append((PROSE, text))

    for table in tables:
        _, top, _, bottom = table.bbox
        text_between(y, max(y, min(top, bottom0)))
        rows = [[one_line(cell or "") for cell in row] for row in table.extract()]
        segments.append((TABLE, "\n".join(table_lines(rows))))
        y = max(y, min(bottom, bottom0))
    text_between(y, bottom0)
    return segments
