"""PDF: text per page with page numbers (pypdf; PDFium when pypdf cannot read the file or a page),
tables as rows with their header names (pdfplumber), OCR for pages without a text layer and for
images that hold text, running headers and footers dropped. Caps on pages, objects and content
refuse pathological files before the expensive work."""

import hashlib
import io
import math

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pypdf import PdfReader

from services.ingest.document import OCR, PROSE, TABLE, DocumentError, ParsedDocument
from services.ingest.parsing import ocr as ocr_engines
from services.ingest.parsing.builder import DocumentBuilder, clean
from services.ingest.parsing.options import ParseOptions
from services.ingest.parsing.pdf_layout import fold, page_lines, paragraphs, repeated_edges
from services.ingest.parsing.pdf_tables import page_with_tables
from services.ingest.parsing.registry import Format

LOCKED = "the PDF is encrypted: give its password with the upload"
WRONG_PASSWORD = "the password given does not open this PDF"
TABLE_PATHS = 4  # drawn lines and boxes on a page before it is searched for tables
MAX_RENDER_PIXELS = 40_000_000  # a page bitmap for OCR (A4 at 600 dpi is 35 M)
MIN_IMAGE_POINTS = (72, 18)  # smallest image (width, height on the page) worth reading: an inch by a quarter
MIN_IMAGE_PIXELS = (64, 16)
SCAN_SHARE = 0.5  # an image this much of a page that has a text layer is a scan already read by its producer


def _open_pypdf(data: bytes, password: str) -> PdfReader:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(password or ""):  # many PDFs open with an empty password
        raise DocumentError(WRONG_PASSWORD if password else LOCKED)
    return reader


def _check_caps(reader: PdfReader, options: ParseOptions) -> None:
    """Pages, objects, and content to interpret (a stream shared by many pages counts on each)."""
    pages = len(reader.pages)
    if pages > options.pdf_max_pages:
        raise DocumentError(f"the PDF has {pages} pages; the limit is {options.pdf_max_pages}")
    objects = int(reader.trailer.get("/Size", 0) or 0)
    if objects > options.pdf_max_objects:
        raise DocumentError(f"the PDF has {objects} objects; the limit is {options.pdf_max_objects}")
    sizes: dict[int, int] = {}
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        contents = page.get("/Contents")
        resolved = contents.get_object() if contents is not None else None
        refs = resolved if isinstance(resolved, list) else [contents] if contents is not None else []
        for ref in refs:
            key = getattr(ref, "idnum", id(ref))
            if key not in sizes:
                stream = ref.get_object()
                sizes[key] = len(stream.get_data()) if hasattr(stream, "get_data") else 0
            total += sizes[key]
        if total > options.pdf_max_content_bytes:
            raise DocumentError(
                f"the PDF's pages hold more than {options.pdf_max_content_bytes} bytes of content to interpret "
                f"(reached on page {number} of {pages})"
            )


def _pdfium_text(page) -> str:
    textpage = page.get_textpage()
    try:
        return clean(textpage.get_text_bounded())
    finally:
        textpage.close()


def _count(page, kind: int, enough: int) -> int:
    n = 0
    for _ in page.get_objects(filter=(kind,), max_depth=2):
        n += 1
        if n >= enough:
            break
    return n


def _render(page, dpi: int) -> np.ndarray:
    width, height = page.get_size()
    scale = min(dpi / 72, math.sqrt(MAX_RENDER_PIXELS / max(1.0, width * height * 1.0)))
    return page.render(scale=scale, grayscale=True).to_numpy()


class _Reader:
    """Everything one parse needs of the file: pypdf, PDFium and (for pages with tables) pdfplumber."""

    def __init__(self, data: bytes, options: ParseOptions) -> None:
        self.data, self.options = data, options
        self.warnings: list[str] = []
        self.title = ""
        self.texts: list[str] | None = None
        failure = None
        try:
            reader = _open_pypdf(data, options.password)
            _check_caps(reader, options)
            self.texts = [clean(page.extract_text() or "") for page in reader.pages]
            self.title = clean((reader.metadata.title or "") if reader.metadata else "")
        except DocumentError:
            raise
        except Exception as exc:  # pypdf's read errors and limits, and its bugs on malformed files
            failure = f"{type(exc).__name__}: {exc}"
        try:
            self.pdf = pdfium.PdfDocument(data, password=options.password or None)
        except pdfium.PdfiumError as exc:
            self.pdf = None
            if self.texts is None:
                if "password" in str(exc).lower():
                    raise DocumentError(WRONG_PASSWORD if options.password else LOCKED) from exc
                raise DocumentError(f"the PDF cannot be read ({failure}; PDFium: {exc})") from exc
        if self.texts is None:
            pages = len(self.pdf)
            if pages > options.pdf_max_pages:
                raise DocumentError(f"the PDF has {pages} pages; the limit is {options.pdf_max_pages}")
            self.warnings.append(f"read with PDFium: pypdf could not ({failure})")
            self.texts = [_pdfium_text(self.pdf[i]) for i in range(pages)]
            self.title = clean(self.pdf.get_metadata_value("Title") or "")
        elif self.pdf is not None:
            for i, text in enumerate(self.texts):
                if not text:
                    self.texts[i] = _pdfium_text(self.pdf[i])
        self._plumber = None
        self._ocr = None
        self._images_seen: set[str] = set()

    @property
    def ocr(self):
        if self._ocr is None:
            self._ocr = ocr_engines.engine(self.options.ocr_engine, self.options.ocr_languages)
        return self._ocr

    def plumber_page(self, index: int):
        if self._plumber is None:
            import pdfplumber

            self._plumber = pdfplumber.open(io.BytesIO(self.data), password=self.options.password or None)
        return self._plumber.pages[index]

    def segments(self, index: int) -> list[tuple[str, str]]:
        """(kind, text) pieces of one page in reading order."""
        text = self.texts[index]
        page = self.pdf[index] if self.pdf is not None else None
        ocr_on = self.options.ocr_engine != "off" and page is not None
        try:
            if page is None:
                return [(PROSE, text)] if text else []
            if not text:
                if not ocr_on:
                    return []
                words = ocr_engines.read_upright(self.ocr, _render(page, self.options.ocr_dpi))
                return [(OCR, p) for p in ocr_engines.paragraphs(words)]
            found = None
            if _count(page, pdfium_c.FPDF_PAGEOBJ_PATH, TABLE_PATHS) >= TABLE_PATHS:
                found = page_with_tables(self.plumber_page(index))
            segments = found or [(PROSE, text)]
            if ocr_on:
                segments += [(OCR, p) for p in self._image_text(page)]
            return segments
        finally:
            if page is not None:
                page.close()

    def _image_text(self, page) -> list[str]:
        """Text inside the images of a page that has a text layer; each distinct image read once."""
        width, height = page.get_size()
        out = []
        for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3):
            left, bottom, right, top = image.get_bounds()
            w, h = right - left, top - bottom
            if w < MIN_IMAGE_POINTS[0] or h < MIN_IMAGE_POINTS[1] or w * h >= SCAN_SHARE * width * height:
                continue
            try:
                pixels = np.asarray(image.get_bitmap(render=True).to_pil().convert("L"))
            except (pdfium.PdfiumError, ValueError, OSError):
                continue  # an image PDFium cannot decode holds no text we can read
            if pixels.shape[1] < MIN_IMAGE_PIXELS[0] or pixels.shape[0] < MIN_IMAGE_PIXELS[1]:
                continue
            digest = hashlib.sha1(pixels.tobytes()).hexdigest()
            if digest in self._images_seen:
                continue
            self._images_seen.add(digest)
            out += ocr_engines.paragraphs(ocr_engines.read_upright(self.ocr, pixels))
        return out

    def close(self) -> None:
        if self._plumber is not None:
            self._plumber.close()
        if self.pdf is not None:
            self.pdf.close()


def parse_pdf(data: bytes, options: ParseOptions) -> ParsedDocument:
    reader = _Reader(data, options)
    try:
        pages = [reader.segments(i) for i in range(len(reader.texts))]
    finally:
        reader.close()
    lines = [[line for kind, text in page if kind != TABLE for line in page_lines(text)] for page in pages]
    repeated = repeated_edges(lines)
    builder = DocumentBuilder()
    empty = []
    for number, (page, page_lines_) in enumerate(zip(pages, lines, strict=True), start=1):
        edges = set(page_lines_[:2] + page_lines_[-2:])
        before = len(builder.blocks)
        for kind, text in page:
            if kind == TABLE:
                builder.add(text, (), TABLE, page=number)
                continue
            body = [line for line in page_lines(text) if not (line in edges and fold(line) in repeated)]
            for paragraph in paragraphs(body):
                builder.add(paragraph, (), kind, page=number)
        if len(builder.blocks) == before:
            empty.append(number)
    if not builder.blocks:
        count = f"{len(pages)} page{'s' if len(pages) != 1 else ''}"
        if options.ocr_engine == "off":
            raise DocumentError(f"no page has a text layer ({count}) and OCR is off")
        raise DocumentError(f"no page has text, not even by OCR ({count})")
    warnings = reader.warnings + ([f"pages without text: {', '.join(map(str, empty))}"] if empty else [])
    return builder.build(options.title or reader.title, warnings)


def looks_like_pdf(data: bytes, name: str) -> bool:
    return data[:1024].lstrip().lower().startswith(b"%pdf")


FORMAT = Format("application/pdf", parse_pdf, magic=looks_like_pdf, order=10)
