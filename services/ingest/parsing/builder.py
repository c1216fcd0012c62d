"""What every format shares: decoding, cleaning, and the builder that lays blocks into one text."""

import re
import unicodedata

from services.ingest.document import CODE, PROSE, Block, DocumentError, ParsedDocument

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")


def clean(text: str) -> str:
    """NFC, no control characters, one space for runs of spaces, Unix newlines."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = CONTROL.sub("", text)
    return "\n".join(SPACES.sub(" ", line).strip() for line in text.split("\n"))


def one_line(text: str) -> str:
    return " ".join(clean(text).split())


def decode(data: bytes) -> str:
    if not data.strip():
        raise DocumentError("the document is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if b"\x00" in data[:4096]:
            raise DocumentError("the document is binary, not text") from exc
        raise DocumentError(f"the document is not valid UTF-8 (byte {exc.start})") from exc


def table_lines(rows: list[list[str]], has_header: bool = True) -> list[str]:
    """Rows as 'Header: value; Header: value', so every row stands on its own; without a header
    row, cells joined by ' | '."""
    rows = [row for row in rows if any(row)]
    if not rows:
        return []
    header, body = (rows[0], rows[1:]) if has_header else ([], rows)
    if not body:
        return [" | ".join(header)]
    if not header:
        return [" | ".join(row) for row in body]
    return ["; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v) for row in body]


class DocumentBuilder:
    """Appends blocks to the cleaned text, keeping offsets exact."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.blocks: list[Block] = []

    def add(self, text: str, section: tuple[str, ...] = (), kind: str = PROSE, page: int = 0) -> None:
        text = text.strip("\n ") if kind != CODE else text.strip("\n")
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        self.blocks.append(Block(text, self.length, section, kind, page))
        self.parts.append(text)
        self.length += len(text)

    def build(self, title: str, warnings: list[str] | None = None) -> ParsedDocument:
        if not self.blocks:
            raise DocumentError("the document has no text")
        return ParsedDocument("".join(self.parts), self.blocks, title, warnings or [])


class Sections:
    """The heading trail: a heading closes every open heading of its level or deeper, so pages that
    start at h2 (or skip a level) nest the way they read."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, text: str) -> None:
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, text))

    @property
    def trail(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._open)
