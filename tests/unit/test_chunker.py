from services.ingest.chunker import CHUNKER_VERSION, chunk_document, section_prefix
from services.ingest.document import CODE, TABLE
from services.ingest.parsing import parse

MARKDOWN = (
    b"# Guide\nIntro paragraph. It has two sentences.\n\n## Install\nRun this:\n\n"
    b"```bash\npip install ragmesh\nmake run\n```\n\n| name | size |\n|---|---|\n| a | 1 |\n| b | 2 |\n\n"
    b"## Long\n" + b"Retrieval systems index vectors and terms for fast search. " * 80
)


def test_chunks_respect_the_token_budget_including_the_prefix(count_tokens):
    doc = parse(MARKDOWN, source_name="guide.md")
    chunks = chunk_document(doc, count_tokens, target_tokens=100, overlap_tokens=20)
    assert len(chunks) > 5
    for chunk in chunks:
        assert count_tokens(chunk.embed_text) + 2 <= 256
        assert count_tokens(chunk.text) <= 100


def test_offsets_point_into_the_cleaned_text(count_tokens):
    doc = parse(MARKDOWN, source_name="guide.md")
    for chunk in chunk_document(doc, count_tokens, target_tokens=80, overlap_tokens=10):
        assert doc.text[chunk.char_start : chunk.char_end] == chunk.text


def test_section_trail_prefixes_embedded_text(count_tokens):
    doc = parse(MARKDOWN, source_name="guide.md")
    chunks = chunk_document(doc, count_tokens, target_tokens=100, overlap_tokens=0)
    long = [c for c in chunks if c.section == "Guide > Long"]
    assert long and all(c.embed_text.startswith("Guide > Long\n") for c in long)
    assert section_prefix("Guide", ("Guide", "Install")) == "Guide > Install"


def test_code_blocks_and_table_rows_are_never_split(count_tokens):
    code = "```python\n" + "\n".join(f"value_{i} = compute_something({i}, {i + 1})" for i in range(60)) + "\n```"
    table = "| name | value |\n|---|---|\n" + "\n".join(f"| row{i} | {i * 7} |" for i in range(80))
    doc = parse(f"# T\n\n{code}\n\n{table}\n".encode(), source_name="t.md")
    kinds = [b.kind for b in doc.blocks]
    assert CODE in kinds and TABLE in kinds
    chunks = chunk_document(doc, count_tokens, target_tokens=60, overlap_tokens=10)
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            assert line.startswith(("```", "value_", "| ", "|---")), line
            if line.startswith("value_"):
                assert line.endswith(")")
            if line.startswith("| row"):
                assert line.endswith("|")


def test_overlap_carries_prose_sentences(count_tokens):
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60)).encode()
    chunks = chunk_document(parse(text), count_tokens, target_tokens=60, overlap_tokens=20)
    assert len(chunks) >= 3
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert current.char_start < previous.char_end, "consecutive chunks overlap"


def test_chunking_is_deterministic(count_tokens):
    first = chunk_document(parse(MARKDOWN, source_name="g.md"), count_tokens, 100, 20)
    second = chunk_document(parse(MARKDOWN, source_name="g.md"), count_tokens, 100, 20)
    assert first == second
    assert CHUNKER_VERSION
