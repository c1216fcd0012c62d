"""Formats, each one module of `formats/` that declares a FORMAT: the type is taken from the bytes
first, then from the declared content type, then from the file name."""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from services.ingest.document import DocumentError, ParsedDocument
from services.ingest.parsing import formats
from services.ingest.parsing.options import ParseOptions

PLAIN = "text/plain"


@dataclass(frozen=True)
class Format:
    mime: str
    parse: Callable[[bytes, ParseOptions], ParsedDocument]
    magic: Callable[[bytes, str], bool] | None = None  # (bytes, lower-case source name) -> is it this format
    declared: tuple[str, ...] = ()  # substrings of a declared content type
    extensions: tuple[str, ...] = ()
    order: int = 100  # magic checks run in this order (more specific formats first)


@cache
def registered() -> tuple[Format, ...]:
    found = []
    for module in pkgutil.iter_modules(formats.__path__):
        declared = getattr(importlib.import_module(f"{formats.__name__}.{module.name}"), "FORMAT", None)
        if isinstance(declared, Format):
            found.append(declared)
    return tuple(sorted(found, key=lambda f: (f.order, f.mime)))


def sniff(data: bytes, content_type: str = "", source_name: str = "") -> str:
    """The document's type from its bytes first, then the declared type and file name."""
    name, declared = source_name.lower(), content_type.lower()
    for fmt in registered():
        if fmt.magic is not None and fmt.magic(data, name):
            return fmt.mime
    if data.startswith(b"PK\x03\x04"):
        return "application/zip"
    for fmt in registered():
        if any(d in declared for d in fmt.declared) or name.endswith(fmt.extensions or ("\0",)):
            return fmt.mime
    return PLAIN


def parse(data: bytes, options: ParseOptions | None = None, **fields) -> ParsedDocument:
    """Parse in this process. Untrusted documents go through isolation.ParserPool instead."""
    options = replace(options or ParseOptions(), **fields)
    kind = sniff(data, options.content_type, options.source_name)
    for fmt in registered():
        if fmt.mime == kind:
            return fmt.parse(data, options)
    raise DocumentError(f"documents of type {kind} are not supported")
