"""DOCX -> paragraphs, heading sections and tables (python-docx), behind decompression limits."""

import io
import zipfile

from services.ingest.document import PROSE, TABLE, DocumentError, ParsedDocument

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_UNCOMPRESSED = 256 * 1024 * 1024
MAX_RATIO = 200
MAX_MEMBERS = 10000


def check_zip(data: bytes) -> None:
    """Refuse zip bombs before anything is decompressed: sizes and ratios come from the directory."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DocumentError(f"the file is not a valid zip/DOCX: {exc}") from exc
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise DocumentError(f"the archive has {len(members)} members; the limit is {MAX_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_UNCOMPRESSED:
        raise DocumentError(f"the archive expands to {total} bytes; the limit is {MAX_UNCOMPRESSED}")
    for m in members:
        if m.compress_size and m.file_size / m.compress_size > MAX_RATIO and m.file_size > 1024 * 1024:
            raise DocumentError(f"{m.filename} expands {m.file_size // m.compress_size}x: refused as a zip bomb")
    if "word/document.xml" not in {m.filename for m in members}:
        raise DocumentError("the zip is not a DOCX document (no word/document.xml)")


def parse_docx(data: bytes, title: str = "") -> ParsedDocument:
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    from services.ingest.parsers import _Builder, clean

    check_zip(data)
    try:
        document = Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many types for broken parts
        raise DocumentError(f"the DOCX cannot be read: {exc}") from exc
    builder = _Builder()
    trail: list[str] = []
    title = title or clean(document.core_properties.title or "")
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = clean(paragraph.text).replace("\n", " ").strip()
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if not text:
                continue
            if style == "Title":
                title = title or text
            elif style.startswith("Heading"):
                level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
                trail[:] = [*trail[: level - 1], text]
            else:
                builder.add(text, tuple(trail), PROSE)
        elif tag == "tbl":
            rows = [[clean(c.text).replace("\n", " ") for c in row.cells] for row in Table(element, document).rows]
            rows = [r for r in rows if any(r)]
            if len(rows) > 1:
                header = rows[0]
                lines = ["; ".join(f"{h}: {v}" if h else v for h, v in zip(header, r, strict=False)) for r in rows[1:]]
            else:
                lines = [" | ".join(r) for r in rows]
            builder.add("\n".join(lines), tuple(trail), TABLE)
    return builder.build(title)
