import pytest

from services.ingest.document import CODE, TABLE, DocumentError
from services.ingest.parsing import parse, sniff
from services.ingest.parsing.builder import clean


def test_html_drops_boilerplate_and_keeps_structure():
    html = (
        b"<html><head><title>Pets</title><style>p{}</style><script>track()</script></head><body>"
        b"<nav>Home | About</nav><h1>Cats</h1><p>Cats are <a href='/x'>great</a> pets.</p>"
        b"<h2>Ages</h2><table><tr><th>Name</th><th>Age</th></tr><tr><td>Tom</td><td>3</td></tr></table>"
        b"<footer>(c) 2026</footer></body></html>"
    )
    doc = parse(html)
    assert doc.title == "Pets"
    assert "track" not in doc.text and "Home | About" not in doc.text and "2026" not in doc.text
    assert doc.blocks[0].text == "Cats are great pets." and doc.blocks[0].section == ("Cats",)
    table = [b for b in doc.blocks if b.kind == TABLE][0]
    assert table.text == "Name: Tom; Age: 3" and table.section == ("Cats", "Ages")


def test_markdown_sections_and_code():
    doc = parse(b"# A\ntext a\n## B\n```\ncode here\n```\n", source_name="x.md")
    assert [(b.section, b.kind) for b in doc.blocks] == [(("A",), "prose"), (("A", "B"), CODE)]


def test_type_is_detected_from_bytes_not_name():
    assert sniff(b"<!DOCTYPE html><html></html>", "", "notes.txt") == "text/html"
    assert sniff(b"%PDF-1.7", "text/plain", "a.txt") == "application/pdf"
    assert sniff(b"# hi", "", "a.md") == "text/markdown"


def test_cleaning_normalises_unicode_and_controls():
    assert clean("Cafe\u0301\x00 \t two  spaces\r\nnext") == "Café two spaces\nnext"


@pytest.mark.parametrize(
    "data, reason",
    [(b"", "empty"), (b"   \n ", "empty"), (b"\x00\x01\x02\xff\xfe" * 50, "binary"), (b"ok \xff\xfe bad", "UTF-8")],
)
def test_bad_input_is_a_document_error(data, reason):
    with pytest.raises(DocumentError, match=reason):
        parse(data)
