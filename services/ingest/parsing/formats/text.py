"""Plain text: paragraphs between blank lines. Also what an unrecognised document is read as."""

import re

from services.ingest.document import ParsedDocument
from services.ingest.parsing.builder import DocumentBuilder, clean, decode
from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.registry import PLAIN, Format


def parse_text(data: bytes, options: ParseOptions) -> ParsedDocument:
    builder = DocumentBuilder()
    for paragraph in re.split(r"\n\s*\n", clean(decode(data))):
        builder.add(paragraph)
    return builder.build(options.title)


FORMAT = Format(PLAIN, parse_text, declared=("text/plain",), extensions=(".txt",), order=900)
