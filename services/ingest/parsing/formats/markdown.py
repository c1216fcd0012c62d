"""Markdown: headings as sections; fenced code blocks and tables kept whole."""

import re

from services.ingest.document import CODE, PROSE, TABLE, ParsedDocument
from services.ingest.parsing.builder import DocumentBuilder, Sections, clean, decode
from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.registry import Format

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^(```|~~~)")


def parse_markdown(data: bytes, options: ParseOptions) -> ParsedDocument:
    builder = DocumentBuilder()
    title = options.title
    sections = Sections()
    lines = clean(decode(data)).split("\n")
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            text = "\n".join(paragraph)
            kind = TABLE if all(line.startswith("|") for line in paragraph) else PROSE
            builder.add(text, sections.trail, kind)
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
            builder.add("\n".join(block), sections.trail, CODE)
        elif heading:
            flush()
            level = len(heading.group(1))
            sections.enter(level, heading.group(2))
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


FORMAT = Format("text/markdown", parse_markdown, declared=("markdown",), extensions=(".md", ".markdown"))
