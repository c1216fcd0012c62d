"""Documents made from known text, for the parsing tests and benchmarks: scanned PDFs (rendered,
skewed, noisy, turned), PDFs with a picture of text, and a pathological PDF."""

import io

import numpy as np
import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

PAGES = [
    "Revenue grew strongly in the northern region this quarter. The board approved a new warehouse "
    "in Lyon for regional distribution, and hiring will start in March.",
    "Costs fell because energy prices dropped. Staff numbers stayed flat at 420 people, while the "
    "service team answered 18,250 calls with a median wait of 95 seconds.",
    "Outlook: the company expects modest growth next year. Risks include currency swings, a slower "
    "housing market and the renewal of two large supply contracts.",
]


def text_pdf(pages: list[str], size: int = 12) -> bytes:
    doc = FPDF()
    doc.set_font("Helvetica", size=size)
    for text in pages:
        doc.add_page()
        doc.multi_cell(w=0, text=text)
    return bytes(doc.output())


def encrypted_pdf(text: str, user: str, owner: str = "owner-secret") -> bytes:
    """Opened with `user` (or, when it is empty, by anyone: only `owner` may change it)."""
    doc = FPDF()
    doc.set_encryption(owner_password=owner, user_password=user)
    doc.set_font("Helvetica", size=12)
    doc.add_page()
    doc.multi_cell(w=0, text=text)
    return bytes(doc.output())


def picture(text: str, dpi: int = 200, size: int = 12) -> Image.Image:
    """A page of `text` as a scanner at `dpi` would see it: grey levels, no text layer."""
    page = pdfium.PdfDocument(text_pdf([text], size))[0]
    return page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")


def degrade(image: Image.Image, skew: float = 0.0, noise: float = 0.0, quarter_turns: int = 0, seed: int = 7):
    """Skew by `skew` degrees, add salt-and-pepper noise on a `noise` share of pixels, turn by 90° steps."""
    if skew:
        image = image.rotate(skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if noise:
        pixels = np.asarray(image).copy()
        rng = np.random.default_rng(seed)
        hit = rng.random(pixels.shape) < noise
        pixels[hit] = rng.choice(np.array([0, 255], dtype=np.uint8), size=int(hit.sum()))
        image = Image.fromarray(pixels)
    if quarter_turns:
        image = image.rotate(90 * quarter_turns, expand=True)
    return image


def scanned_pdf(images: list[Image.Image], dpi: int = 200) -> bytes:
    """Each image as a whole page, the way a scanner writes a PDF: no text layer at all."""
    doc = FPDF(unit="pt")
    for image in images:
        width, height = image.width * 72 / dpi, image.height * 72 / dpi
        doc.add_page(format=(width, height))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        doc.image(buffer, x=0, y=0, w=width, h=height)
    return bytes(doc.output())


def pdf_with_picture_of_text(paragraph: str, pictured: str) -> bytes:
    """A text page that also shows a picture holding `pictured` (a chart title, a scanned note)."""
    image = picture(pictured, dpi=200, size=16).crop((0, 0, 1654, 220))
    doc = FPDF()
    doc.set_font("Helvetica", size=11)
    doc.add_page()
    doc.multi_cell(w=0, text=paragraph)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    doc.image(buffer, x=10, y=80, w=190)
    return bytes(doc.output())


def pdf_bomb(pages: int = 2000, stream_bytes: int = 1 << 20) -> bytes:
    """Every page draws the same ~1 MiB content stream: small on disk, hours of text extraction."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    operator = b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n"
    content = DecodedStreamObject()
    content.set_data(operator * (stream_bytes // len(operator)))
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Contents")] = writer._add_object(content)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    for _ in range(pages - 1):
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def edit_distance(a: list, b: list) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def accuracy(expected: str, got: str) -> tuple[float, float]:
    """(character accuracy, word accuracy): 1 - edit distance / length, spaces folded."""
    expected_words, got_words = expected.split(), got.split()
    chars = 1 - edit_distance(list(" ".join(expected_words)), list(" ".join(got_words))) / len(" ".join(expected_words))
    words = 1 - edit_distance(expected_words, got_words) / len(expected_words)
    return max(0.0, chars), max(0.0, words)
