"""Bytes -> cleaned text and structural blocks, one module per format (`formats/`), run in
isolated processes with limits (`isolation`)."""

from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.registry import parse, sniff

__all__ = ["ParseOptions", "parse", "sniff"]
