"""DOCX (python-docx): paragraphs, heading sections and tables, behind decompression limits."""

import io
import zipfile

from services.ingest.document import PROSE, TABLE, DocumentError, ParsedDocument
from services.ingest.parsing.builder import DocumentBuilder, Sections, clean, one_line, table_lines
from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.registry import Format

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_RATIO = 200
MAX_MEMBERS = 10000


def inflated_size(data: bytes) -> int:
    """What a zip archive expands to, from its directory (reads stop at the sizes it declares);
    0 for anything that is not a readable zip."""
    try:
        return sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return 0


def check_zip(data: bytes, limit: int) -> None:
    """Refuse zip bombs before anything is decompressed: sizes and ratios come from the directory."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DocumentError(f"the file is not a valid zip/DOCX: {exc}") from exc
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise DocumentError(f"the archive has {len(members)} members; the limit is {MAX_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > limit:
        raise DocumentError(f"the archive expands to {total} bytes; the limit is {limit}")
    for m in members:
        if m.compress_size and m.file_size / m.compress_size > MAX_RATIO and m.file_size > 1024 * 1024:
            raise DocumentError(f"{m.filename} expands {m.file_size // m.compress_size}x: refused as a zip bomb")
    if "word/document.xml" not in {m.filename for m in members}:
        raise DocumentError("the zip is not a DOCX document (no word/document.xml)")


def parse_docx(data: bytes, options: ParseOptions) -> ParsedDocument:
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_zip(data, options.max_inflated_bytes)
    try:
        document = Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many types for broken parts
        raise DocumentError(f"the DOCX cannot be read: {exc}") from exc
    builder = DocumentBuilder()
    sections = Sections()
    title = options.title or clean(document.core_properties.title or "")
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = one_line(paragraph.text)
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if not text:
                continue
            if style == "Title":
                title = title or text
            elif style.startswith("Heading"):
                level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
                sections.enter(level, text)
            else:
                builder.add(text, sections.trail, PROSE)
        elif tag == "tbl":
            rows = [[one_line(c.text) for c in row.cells] for row in Table(element, document).rows]
            builder.add("\n".join(table_lines(rows)), sections.trail, TABLE)
    return builder.build(title)


def looks_like_docx(data: bytes, name: str) -> bool:
    return data.startswith(b"PK\x03\x04") and (b"word/" in data[:65536] or name.endswith(".docx"))


FORMAT = Format(DOCX, parse_docx, magic=looks_like_docx, order=20)
