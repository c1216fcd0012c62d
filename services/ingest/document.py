"""What parsers produce and the chunker consumes."""

from dataclasses import dataclass, field

PROSE, TABLE, CODE = "prose", "table", "code"
OCR = "ocr"  # prose read from an image (a scanned page, a picture of text): may hold misreadings
PROSE_KINDS = (PROSE, OCR)  # split at sentences; tables and code split only between lines


@dataclass(frozen=True)
class Block:
    """A paragraph, code block or table, with its heading trail and offset into the cleaned text."""

    text: str
    start: int
    section: tuple[str, ...] = ()
    kind: str = PROSE
    page: int = 0  # 1-based page of paged formats (PDF); 0 when the format has no pages

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class ParsedDocument:
    text: str
    blocks: list[Block] = field(default_factory=list)
    title: str = ""
    warnings: list[str] = field(default_factory=list)


class DocumentError(Exception):
    """The document itself is bad (corrupt, empty, unsupported): retrying will not help."""
