"""Bytes -> cleaned text and structural blocks, for plain text, Markdown and HTML."""

import csv
import io
import re
import unicodedata

from selectolax.lexbor import LexborHTMLParser as HTMLParser

from services.ingest.document import CODE, PROSE, TABLE, Block, DocumentError, ParsedDocument
from services.ingest.office import DOCX, parse_docx
from services.ingest.pdf import parse_pdf

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^(```|~~~)")


def clean(text: str) -> str:
    """NFC, no control characters, one space for runs of spaces, Unix newlines."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = CONTROL.sub("", text)
    return "\n".join(SPACES.sub(" ", line).strip() for line in text.split("\n"))


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


class _Builder:
    """Appends blocks to the cleaned text, keeping offsets exact."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.blocks: list[Block] = []

    def add(self, text: str, section: tuple[str, ...], kind: str = PROSE, page: int = 0) -> None:
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


def parse_text(data: bytes, title: str = "") -> ParsedDocument:
    builder = _Builder()
    for paragraph in re.split(r"\n\s*\n", clean(decode(data))):
        builder.add(paragraph, ())
    return builder.build(title)


def parse_markdown(data: bytes, title: str = "") -> ParsedDocument:
    builder = _Builder()
    trail: list[str] = []
    lines = clean(decode(data)).split("\n")
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            text = "\n".join(paragraph)
            kind = TABLE if all(line.startswith("|") for line in paragraph) else PROSE
            builder.add(text, tuple(trail), kind)
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        heading = HEADING.match(line)
        if FENCE.match(line):
            flush()
            fence = line[:3]
            block = [line]
            i += 1
            while i < len(lines) and not lines[i].startswith(fence):
                block.append(lines[i])
                i += 1
            block.append(fence)
            builder.add("\n".join(block), tuple(trail), CODE)
        elif heading:
            flush()
            level = len(heading.group(1))
            trail[:] = [*trail[: level - 1], heading.group(2)]
            title = title or (heading.group(2) if level == 1 else "")
        elif not line.strip() or (paragraph and (line.startswith("|") != paragraph[-1].startswith("|"))):
            flush()
            if line.strip():
                paragraph.append(line)
        else:
            paragraph.append(line)
        i += 1
    flush()
    return builder.build(title)


DROP_TAGS = [
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "form",
    "iframe",
    "svg",
    "template",
    "button",
]
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
BLOCKS = {"p", "li", "pre", "blockquote", "dd", "dt", "figcaption", "td", "caption"}


def table_rows(table) -> list[str]:
    """Rows as 'Header: value; Header: value', so every row stands on its own."""
    rows = [[clean(c.text(separator=" ")).replace("\n", " ") for c in tr.css("th, td")] for tr in table.css("tr")]
    rows = [r for r in rows if any(r)]
    if not rows:
        return []
    header, body = (rows[0], rows[1:]) if table.css_first("th") else ([], rows)
    if not body:
        return [" | ".join(header)]
    if not header:
        return [" | ".join(r) for r in body]
    return ["; ".join(f"{h}: {v}" if h else v for h, v in zip(header, r, strict=False)) for r in body]


def _has_nested_blocks(node) -> bool:
    """css() on lexbor nodes includes the node itself; look only below it."""
    return any(n.mem_id != node.mem_id for n in node.css("p, table, pre, ul, ol"))


def parse_html(data: bytes, title: str = "") -> ParsedDocument:
    tree = HTMLParser(decode(data))
    for tag in DROP_TAGS:
        for node in tree.css(tag):
            node.decompose()
    title = title or (clean(tree.css_first("title").text()) if tree.css_first("title") else "")
    builder = _Builder()
    trail: list[str] = []
    root = tree.body or tree.root
    if root is None:
        raise DocumentError("the HTML has no body")

    def walk(node) -> None:
        for child in node.iter(include_text=False):
            tag = child.tag
            if tag in HEADINGS:
                level = HEADINGS[tag]
                trail[:] = [*trail[: level - 1], clean(child.text(separator=" ")).replace("\n", " ")]
            elif tag == "table":
                builder.add("\n".join(table_rows(child)), tuple(trail), TABLE)
            elif tag == "pre":
                builder.add(child.text(), tuple(trail), CODE)
            elif tag in BLOCKS and not _has_nested_blocks(child):
                builder.add(clean(child.text(separator="")).replace("\n", " "), tuple(trail))
            else:
                walk(child)

    walk(root)
    return builder.build(title)


def sniff(data: bytes, content_type: str, source_name: str) -> str:
    """The document's type from its bytes first, then the declared type and file name."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "application/pdf"
    if data.startswith(b"PK\x03\x04"):
        return DOCX if b"word/" in data[:65536] or source_name.lower().endswith(".docx") else "application/zip"
    if head.startswith(b"<!doctype html") or head.startswith(b"<html") or b"<body" in head:
        return "text/html"
    name = source_name.lower()
    declared = content_type.lower()
    if "html" in declared or name.endswith((".html", ".htm")):
        return "text/html"
    if "markdown" in declared or name.endswith((".md", ".markdown")):
        return "text/markdown"
    if "csv" in declared or name.endswith(".csv"):
        return "text/csv"
    return "text/plain"


def parse_csv(data: bytes, title: str = "") -> ParsedDocument:
    """One block per row, 'Header: value; …', so a row is never split and keeps its header names."""
    rows = list(csv.reader(io.StringIO(clean(decode(data)))))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DocumentError("the CSV has no rows")
    header, body = rows[0], rows[1:] or rows[:1]
    builder = _Builder()
    for row in body:
        builder.add("; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v), (), TABLE)
    return builder.build(title)


PARSERS = {
    "text/plain": parse_text,
    "text/markdown": parse_markdown,
    "text/html": parse_html,
    "text/csv": parse_csv,
    "application/pdf": parse_pdf,
    DOCX: parse_docx,
}


def parse(data: bytes, content_type: str = "", source_name: str = "", title: str = "") -> ParsedDocument:
    kind = sniff(data, content_type, source_name)
    parser = PARSERS.get(kind)
    if parser is None:
        raise DocumentError(f"documents of type {kind} are not supported")
    return parser(data, title)
