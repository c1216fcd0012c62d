"""Real documents made by the tests: PDFs (fpdf2), DOCX (python-docx), zips."""

import io
import zipfile

from docx import Document
from fpdf import FPDF


def pdf(pages: list[list[str]], header: str = "", footer: str = "", blank_pages: tuple[int, ...] = ()) -> bytes:
    """One line per entry; header/footer on every page ('{n}' becomes the page number)."""
    doc = FPDF()
    doc.set_auto_page_break(False)
    doc.set_font("Helvetica", size=11)
    for number, lines in enumerate(pages, start=1):
        doc.add_page()
        if number in blank_pages:
            doc.rect(20, 20, 100, 100, style="F")  # drawn, not text: no text layer
            continue
        if header:
            doc.cell(text=header.format(n=number), new_x="LMARGIN", new_y="NEXT")
            doc.ln(4)
        for line in lines:
            doc.cell(text=line, new_x="LMARGIN", new_y="NEXT")
        if footer:
            doc.set_y(-20)
            doc.cell(text=footer.format(n=number), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def pdf_with_table(rows: list[list[str]]) -> bytes:
    doc = FPDF()
    doc.set_font("Helvetica", size=11)
    doc.add_page()
    doc.cell(text="Fleet inventory by model.", new_x="LMARGIN", new_y="NEXT")
    with doc.table() as table:
        for row in rows:
            cells = table.row()
            for value in row:
                cells.cell(value)
    return bytes(doc.output())


def docx(title: str, sections: list[tuple[str, list[str]]], table: list[list[str]] | None = None) -> bytes:
    document = Document()
    document.core_properties.title = title
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb(expanded_mib: int = 40) -> bytes:
    """A DOCX-looking zip whose document.xml inflates to many MiB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (expanded_mib << 20))
    return out.getvalue()
