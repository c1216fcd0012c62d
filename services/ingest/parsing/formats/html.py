"""HTML (selectolax/lexbor): every visible text kept, in reading order, with its structure.

Text is gathered into paragraphs wherever it sits: directly in a div, span or body, around a block
inside a div, in custom elements. Block elements close a paragraph; headings open sections;
tables become 'Header: value; …' rows; `pre` is code; list items and cells are their own blocks.
Site chrome (nav, aside, forms, a page-level header or footer) and hidden or non-visible elements
are left out. The tree is walked without recursion, so nesting depth costs nothing but time.
"""

import re

from selectolax.lexbor import LexborHTMLParser

from services.ingest.document import CODE, PROSE, TABLE, DocumentError, ParsedDocument
from services.ingest.parsing.builder import DocumentBuilder, Sections, clean, decode, one_line, table_lines
from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.registry import Format

NOT_SHOWN = {
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas", "head", "title",
    "meta", "link", "button", "select", "input", "textarea", "form", "nav", "aside", "dialog", "_comment",
}  # fmt: skip
CHROME = {"header", "footer"}  # site chrome at page level; part of the content inside article/main
CONTENT = {"article", "main"}
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
BLOCKS = {
    "address", "article", "blockquote", "body", "center", "dd", "details", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "ol",
    "p", "section", "summary", "ul", "caption", "tbody", "thead", "tfoot", "tr", "td", "th",
}  # fmt: skip
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
TEXT = "-text"


def hidden(node) -> bool:
    attributes = node.attributes
    if "hidden" in attributes or (attributes.get("aria-hidden") or "").lower() == "true":
        return True
    return bool(HIDDEN_STYLE.search(attributes.get("style") or ""))


def children(node) -> list:
    return list(node.iter(include_text=True))


def inline_text(node) -> str:
    """A heading's or cell's visible text on one line: words from neighbouring elements kept apart
    only where the markup puts a break between them."""
    parts: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.tag == TEXT:
            parts.append(current.text_content or "")
        elif current.tag not in NOT_SHOWN and not hidden(current):
            if current.tag in BLOCKS or current.tag == "br":
                parts.append(" ")
            stack.extend(reversed(children(current)))
    return one_line("".join(parts))


def table_rows(table) -> list[str]:
    rows = [tr for tr in table.css("tr") if not hidden(tr)]
    cells = [[inline_text(c) for c in tr.iter() if c.tag in ("td", "th")] for tr in rows]
    has_header = bool(rows) and any(c.tag == "th" for c in rows[0].iter())
    return table_lines(cells, has_header)


class _Walk:
    def __init__(self) -> None:
        self.builder = DocumentBuilder()
        self.sections = Sections()
        self.inline: list[str] = []

    def flush(self) -> None:
        text = "".join(self.inline)
        self.inline.clear()
        lines = (" ".join(line.split()) for line in clean(text).split("\n"))
        self.builder.add("\n".join(line for line in lines if line), self.sections.trail, PROSE)

    def run(self, root) -> None:
        stack: list[tuple[object, bool, bool]] = [(root, False, False)]  # node, closing, inside content
        while stack:
            node, closing, in_content = stack.pop()
            if closing:
                self.flush()
                continue
            tag = node.tag
            if tag == TEXT:
                self.inline.append(node.text_content or "")
                continue
            if tag in NOT_SHOWN or (tag in CHROME and not in_content) or hidden(node):
                continue
            if tag == "br":
                self.inline.append("\n")
            elif tag in HEADINGS:
                self.flush()
                self.sections.enter(HEADINGS[tag], inline_text(node))
            elif tag == "table":
                self.flush()
                self.builder.add("\n".join(table_rows(node)), self.sections.trail, TABLE)
            elif tag == "pre":
                self.flush()
                self.builder.add(clean(node.text(deep=True)), self.sections.trail, CODE)
            else:
                in_content = in_content or tag in CONTENT
                if tag in BLOCKS:
                    self.flush()
                    stack.append((node, True, in_content))
                stack.extend((child, False, in_content) for child in reversed(children(node)))
        self.flush()


def parse_html(data: bytes, options: ParseOptions) -> ParsedDocument:
    tree = LexborHTMLParser(decode(data))
    title_node = tree.css_first("title")
    title = options.title or (one_line(title_node.text()) if title_node is not None else "")
    root = tree.body or tree.root
    if root is None:
        raise DocumentError("the HTML has no body")
    walk = _Walk()
    walk.run(root)
    return walk.builder.build(title)


def looks_like_html(data: bytes, name: str) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html") or b"<body" in head


FORMAT = Format(
    "text/html", parse_html, magic=looks_like_html, declared=("html",), extensions=(".html", ".htm"), order=30
)
