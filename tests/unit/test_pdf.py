"""PDFs as they come: scanned pages (OCR), pictures of text, tables, files pypdf cannot read,
encrypted files, and files built to exhaust a parser. Made here from known text."""

import io
import os
import shutil

import pytest
from fixtures import pdf_with_table
from pypdf import PdfWriter

from benchmarks.documents import (
    PAGES,
    accuracy,
    degrade,
    encrypted_pdf,
    pdf_bomb,
    pdf_with_picture_of_text,
    picture,
    scanned_pdf,
    text_pdf,
)
from services.ingest.chunker import chunk_document
from services.ingest.document import OCR, PROSE, TABLE, DocumentError
from services.ingest.parsing import parse


def joined(*pdfs: bytes) -> bytes:
    writer = PdfWriter()
    for data in pdfs:
        writer.append(io.BytesIO(data))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_scanned_page_is_read_by_ocr_and_its_chunks_say_so(count_tokens):
    doc = parse(joined(text_pdf(PAGES[:1]), scanned_pdf([picture(PAGES[1])])), source_name="scan.pdf")
    assert [(b.kind, b.page) for b in doc.blocks] == [(PROSE, 1), (OCR, 2)]
    assert doc.blocks[0].text == PAGES[0]
    chars, words = accuracy(PAGES[1], doc.blocks[1].text)  # a clean 200 dpi scan
    assert chars >= 0.97 and words >= 0.9, (chars, words, doc.blocks[1].text)
    chunks = chunk_document(doc, count_tokens, target_tokens=40, overlap_tokens=0)
    assert {(c.kind, c.page_start, c.page_end) for c in chunks} == {(PROSE, 1, 1), (OCR, 2, 2)}
    assert not doc.warnings


@pytest.mark.parametrize(
    "damage", [dict(quarter_turns=1), dict(quarter_turns=2), dict(skew=3.0), dict(noise=0.02)], ids=str
)
def test_a_page_scanned_turned_skewed_or_noisy_is_read(damage):
    doc = parse(scanned_pdf([degrade(picture(PAGES[2]), **damage)]))
    chars, _ = accuracy(PAGES[2], doc.text)
    assert chars >= 0.95, (chars, doc.text)


def test_text_inside_a_picture_on_a_text_page_is_read():
    doc = parse(pdf_with_picture_of_text("Sales rose in spring.", "Figure 2: Quarterly revenue by region"))
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (PROSE, "Sales rose in spring."),
        (OCR, "Figure 2: Quarterly revenue by region"),
    ]


def test_ocr_off_leaves_scanned_pages_listed_as_without_text():
    with pytest.raises(DocumentError, match="no page has a text layer .* OCR is off"):
        parse(scanned_pdf([picture(PAGES[0])]), ocr_engine="off")


def test_a_pdf_table_becomes_rows_with_their_header_names():
    doc = parse(pdf_with_table([["Model", "Count"], ["Falcon", "12"], ["Osprey", "7"]]))
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (PROSE, "Fleet inventory by model."),
        (TABLE, "Model: Falcon; Count: 12\nModel: Osprey; Count: 7"),
    ]


def test_a_pdf_pypdf_cannot_read_is_read_by_pdfium():
    data = text_pdf(PAGES[:2])
    broken = data[: data.rfind(b"xref")]  # no cross-reference table, no trailer
    doc = parse(broken)
    assert [b.page for b in doc.blocks] == [1, 2]
    assert doc.blocks[0].text == PAGES[0] and doc.blocks[1].text == PAGES[1]
    assert len(doc.warnings) == 1 and doc.warnings[0].startswith("read with PDFium: pypdf could not")


def test_an_encrypted_pdf_opens_with_its_password_and_fails_clearly_without():
    data = encrypted_pdf(PAGES[0], user="s3cret-pw")
    with pytest.raises(DocumentError, match="^the PDF is encrypted: give its password with the upload$"):
        parse(data)
    with pytest.raises(DocumentError, match="^the password given does not open this PDF$") as failure:
        parse(data, password="wrong-pw")
    assert "wrong-pw" not in str(failure.value)
    assert parse(data, password="s3cret-pw").text == PAGES[0]


def test_a_pdf_restricted_only_by_an_owner_password_needs_none():
    assert parse(encrypted_pdf(PAGES[0], user="")).text == PAGES[0]


def test_a_pdf_over_the_page_object_or_content_caps_fails_before_extraction():
    with pytest.raises(DocumentError, match="^the PDF has 3 pages; the limit is 2$"):
        parse(text_pdf(PAGES), pdf_max_pages=2)
    with pytest.raises(DocumentError, match=r"^the PDF has \d+ objects; the limit is 5$"):
        parse(text_pdf(PAGES), pdf_max_objects=5)
    # 2,000 pages sharing one 1 MiB content stream: 2 GiB of content to interpret.
    with pytest.raises(
        DocumentError, match="more than 268435456 bytes of content to interpret .reached on page 257 of"
    ):
        parse(pdf_bomb())


@pytest.mark.skipif(
    shutil.which("tesseract") is None and not os.environ.get("RAGMESH_REQUIRE_TESSERACT"),
    reason="tesseract-ocr is not installed (.ci/run installs it and requires this test)",
)
def test_tesseract_reads_a_scanned_page_when_configured():
    pages = [degrade(picture(PAGES[1]), skew=3.0, noise=0.02), degrade(picture(PAGES[2]), quarter_turns=2)]
    doc = parse(scanned_pdf(pages), ocr_engine="tesseract")
    assert {(b.kind, b.page) for b in doc.blocks} == {(OCR, 1), (OCR, 2)}
    for number, expected in [(1, PAGES[1]), (2, PAGES[2])]:
        text = " ".join(b.text for b in doc.blocks if b.page == number)
        chars, _ = accuracy(expected, text)
        assert chars >= 0.95, (number, chars, text)
