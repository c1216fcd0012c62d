"""Each format from real files made here, and bad input that must fail with a clear reason."""

import pytest
from fixtures import docx, pdf, pdf_with_table, zip_bomb

from services.ingest.chunker import chunk_document
from services.ingest.document import TABLE, DocumentError
from services.ingest.parsing import parse, sniff
from services.ingest.parsing.formats.docx import DOCX

REPORT = [
    [
        "Revenue grew strongly in the northern region this quarter.",
        "The board approved a new ware-",
        "house in Lyon for regional distribution.",
    ],
    ["Costs fell because energy prices dropped.", "Staff numbers stayed flat at 420 people."],
    ["Outlook: the company expects modest growth next year.", "Risks include currency swings."],
]


def test_pdf_pages_hyphenation_and_running_headers(count_tokens):
    data = pdf(REPORT, header="ACME Corp Quarterly Report", footer="Page {n} of 3")
    doc = parse(data, source_name="report.pdf")
    assert "warehouse in Lyon" in doc.text
    assert "ACME Corp Quarterly Report" not in doc.text and "Page 2 of 3" not in doc.text
    assert {b.page for b in doc.blocks} == {1, 2, 3}
    assert [b.page for b in doc.blocks if "energy prices" in b.text] == [2]
    chunks = chunk_document(doc, count_tokens, target_tokens=20, overlap_tokens=0)
    assert any(c.page_start == 2 for c in chunks) and all(1 <= c.page_start <= c.page_end <= 3 for c in chunks)
    assert not doc.warnings


def test_pdf_page_without_text_layer_is_reported():
    doc = parse(pdf(REPORT, blank_pages=(2,)), source_name="scan.pdf")
    assert doc.warnings == ["pages without text: 2"]
    assert {b.page for b in doc.blocks} == {1, 3}


def test_pdf_with_no_text_at_all_fails_with_a_reason():
    with pytest.raises(DocumentError, match="no page has text, not even by OCR"):
        parse(pdf([["x"], ["y"]], blank_pages=(1, 2)))
    with pytest.raises(DocumentError, match="no page has a text layer"):
        parse(pdf([["x"], ["y"]], blank_pages=(1, 2)), ocr_engine="off")


def test_pdf_table_keeps_its_cells():
    doc = parse(pdf_with_table([["Model", "Count"], ["Falcon", "12"], ["Osprey", "7"]]))
    for value in ["Fleet inventory", "Falcon", "12", "Osprey", "7"]:
        assert value in doc.text


@pytest.mark.parametrize("cut", [0.3, 0.6])
def test_truncated_pdf_fails_or_parses_never_crashes(cut):
    data = pdf(REPORT)
    try:
        parse(data[: int(len(data) * cut)], source_name="broken.pdf")
    except DocumentError as exc:
        assert "PDF" in str(exc) or "text" in str(exc)


def test_corrupt_pdf_is_a_document_error():
    with pytest.raises(DocumentError):
        parse(b"%PDF-1.7\n" + bytes(range(256)) * 40)


def test_docx_paragraphs_headings_and_tables():
    data = docx(
        "Fleet handbook",
        [("Maintenance", ["Engines are inspected every 400 hours."]), ("Crew", ["Pilots rest 10 hours."])],
        table=[["Aircraft", "Seats"], ["Falcon", "12"], ["Osprey", "7"]],
    )
    assert sniff(data, "", "handbook.bin") == DOCX
    doc = parse(data, source_name="handbook.docx")
    assert doc.title == "Fleet handbook"
    assert [(b.section, b.kind) for b in doc.blocks][:2] == [(("Maintenance",), "prose"), (("Crew",), "prose")]
    table = [b for b in doc.blocks if b.kind == TABLE][0]
    assert table.text == "Aircraft: Falcon; Seats: 12\nAircraft: Osprey; Seats: 7"


def test_zip_bomb_disguised_as_docx_is_refused_before_inflating():
    with pytest.raises(DocumentError, match="zip bomb|expands"):
        parse(zip_bomb(), source_name="innocent.docx")


def test_csv_rows_keep_header_names():
    doc = parse(b"city,country,population\nLyon,France,522000\nTurin,Italy,848000\n", source_name="cities.csv")
    assert [b.text for b in doc.blocks] == [
        "city: Lyon; country: France; population: 522000",
        "city: Turin; country: Italy; population: 848000",
    ]
    assert all(b.kind == TABLE for b in doc.blocks)


def test_wrong_extension_is_detected_from_the_bytes():
    html = b"<!doctype html><html><body><h1>T</h1><p>Body text.</p></body></html>"
    assert parse(html, source_name="page.txt").blocks[0].section == ("T",)
    assert parse(pdf(REPORT), source_name="report.md").blocks[0].page == 1


def test_random_zip_is_not_a_docx():
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("data.bin", b"1234")
    with pytest.raises(DocumentError, match="not supported|not a DOCX"):
        parse(out.getvalue(), source_name="x.zip")


def test_a_docx_holds_its_inflated_size_of_the_byte_budget():
    from rag.v1 import types_pb2
    from services.ingest.parsing.formats.docx import inflated_size
    from services.ingest.rechunk import held_bytes

    data = docx("Big", [("Part", ["All work and no play makes a dull report. " * 2000])])
    inflated = inflated_size(data)
    assert inflated > 5 * len(data)
    entry = types_pb2.DocumentVersion(size_bytes=len(data), inflated_bytes=inflated)
    assert held_bytes(entry) == inflated
    assert held_bytes(types_pb2.DocumentVersion(size_bytes=1234)) == 1234
    assert inflated_size(b"plain text") == 0
