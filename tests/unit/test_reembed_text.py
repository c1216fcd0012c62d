"""A generation of another embedding model embeds a stored chunk's text again: exactly the text
ingestion embedded for it (title and section trail, then the text), rebuilt from the chunk."""

from rag.v1 import types_pb2
from services.ingest.chunker import chunk_document
from services.ingest.parsing import parse
from services.retrieve.reembed import embedding_text

MARKDOWN = (
    b"# Guide\nIntro paragraph. It has two sentences.\n\n## Install\nRun this:\n\n"
    b"```bash\npip install ragmesh\nmake run\n```\n\n### Guide\nA section named like the title.\n\n"
    b"## Long\n" + b"Retrieval systems index vectors and terms for fast search. " * 40
)


def stored(title: str, draft) -> types_pb2.Chunk:
    """The chunk as ingestion publishes it and the engines give it back."""
    return types_pb2.Chunk(text=draft.text, title=title, section=draft.section)


def test_the_text_embedded_again_is_the_text_ingestion_embedded(count_tokens):
    for source_name, content in (("guide.md", MARKDOWN), ("notes.txt", b"Plain text without any title. " * 30)):
        doc = parse(content, source_name=source_name)
        drafts = chunk_document(doc, count_tokens, target_tokens=60, overlap_tokens=10)
        assert len(drafts) > 2
        assert [embedding_text(stored(doc.title, d)) for d in drafts] == [d.embed_text for d in drafts]
    sections = {d.section for d in chunk_document(parse(MARKDOWN, source_name="guide.md"), count_tokens)}
    assert {"Guide", "Guide > Install", "Guide > Long"} <= sections


def test_a_chunk_without_title_or_section_is_its_text():
    assert embedding_text(types_pb2.Chunk(text="just text")) == "just text"
    assert embedding_text(types_pb2.Chunk(text="t", title="T", section="T > A")) == "T > A\nt"
