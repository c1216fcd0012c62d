"""How a document is parsed, beyond its bytes: what the upload said and what the service allows."""

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ParseOptions:
    content_type: str = ""
    source_name: str = ""
    title: str = ""
    password: str = ""  # opens an encrypted PDF; never logged
    ocr_engine: str = "rapidocr"  # rapidocr, tesseract or off
    ocr_languages: str = "eng"  # Tesseract's language codes, '+' separated
    ocr_dpi: int = 200
    pdf_max_pages: int = 5000
    pdf_max_objects: int = 2_000_000
    pdf_max_content_bytes: int = 256 * MIB  # page content streams as interpreted: a shared one counts on every page
    max_inflated_bytes: int = 256 * MIB  # what a zipped format (DOCX) may expand to

    def __repr__(self) -> str:  # the password must not reach a log line or an error message
        shown = {k: v for k, v in self.__dict__.items() if k != "password"}
        return f"ParseOptions({shown}, password={'set' if self.password else 'unset'})"


def options_from(settings, **fields) -> ParseOptions:
    """The service's parsing settings (an IngestSettings) with one document's fields."""
    configured = {
        "ocr_engine": settings.ocr_engine,
        "ocr_languages": settings.ocr_languages,
        "ocr_dpi": settings.ocr_dpi,
        "pdf_max_pages": settings.pdf_max_pages,
        "pdf_max_objects": settings.pdf_max_objects,
        "pdf_max_content_bytes": settings.pdf_max_content_bytes,
        "max_inflated_bytes": settings.max_inflated_bytes,
    }
    return ParseOptions(**{**configured, **fields})
