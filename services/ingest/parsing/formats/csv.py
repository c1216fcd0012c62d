"""CSV: one block per row, 'Header: value; …', so a row is never split and keeps its header names."""

import csv
import io

from services.ingest.document import TABLE, DocumentError, ParsedDocument
from services.ingest.parsing.builder import DocumentBuilder, clean, decode, table_lines
from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.registry import Format

FIELD_LIMIT = 1 << 20  # characters in one field; csv's own default is 128 KiB


def parse_csv(data: bytes, options: ParseOptions) -> ParsedDocument:
    csv.field_size_limit(FIELD_LIMIT)
    try:
        rows = list(csv.reader(io.StringIO(clean(decode(data)))))
    except csv.Error as exc:
        raise DocumentError(f"the CSV cannot be read: {exc}") from exc
    rows = [[cell.strip() for cell in r] for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DocumentError("the CSV has no rows")
    builder = DocumentBuilder()
    for line in table_lines(rows):
        builder.add(line, (), TABLE)
    return builder.build(options.title)


FORMAT = Format("text/csv", parse_csv, declared=("csv",), extensions=(".csv",))
