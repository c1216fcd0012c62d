"""What parsers produce and the chunker consumes."""

from dataclasses import dataclass, field

PROSE, TABLE, CODE = "prose", "table", "code"


@dataclass(frozen=True)
class Block:
    """A paragraph, code block or table, with its heading trail and offset into the cleaned text."""

    text: str
    start: int
    section: tuple[str, ...] = ()
    kind: str = PROSE

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class ParsedDocument:
    text: str
    blocks: list[Block] = field(default_factory=list)
    title: str = ""


class DocumentError(Exception):
    """The document itself is bad (corrupt, empty, unsupported): retrying will not help."""
