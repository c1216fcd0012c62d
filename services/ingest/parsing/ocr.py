"""OCR of page and image bitmaps: RapidOCR (ONNX models bundled in its package) by default, or
Tesseract when the distribution's `tesseract-ocr` is installed. Pages come out upright whatever
way they were scanned, as paragraphs in reading order."""

import shutil
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageFilter

MIN_SCORE = 0.5  # recognitions below this confidence are noise (specks, textures)
UPRIGHT_SCORE = 0.9  # a page read with less mean confidence may be upside down: try it turned


class OcrUnavailable(RuntimeError):
    """The configured engine cannot run here (not installed): an infrastructure problem, retried."""


@dataclass(frozen=True)
class Word:
    """One recognised run of text with its box (pixels) and confidence."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    score: float
    line: tuple[int, ...] = ()  # the engine's own (block, paragraph, line), when it finds the layout itself

    @property
    def height(self) -> float:
        return self.bottom - self.top


class RapidOcr:
    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise OcrUnavailable(f"rapidocr is not installed: {exc}") from exc
        # One thread: parsing processes run side by side, each on its own core. No per-line angle
        # classifier: read_upright turns whole pages, and the classifier flipped long lines (a
        # clean page at 150 or 300 dpi read at 0.84 character accuracy with it, 0.99+ without).
        try:
            self.engine = RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Global.use_cls": False,
                    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                }
            )
        except Exception as exc:  # its packaged models missing or damaged: this installation, not the document
            raise OcrUnavailable(f"RapidOCR could not start: {exc}") from exc

    def words(self, image: np.ndarray) -> list[Word]:
        result = self.engine(image)
        if result.boxes is None:
            return []
        out = []
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            xs, ys = box[:, 0], box[:, 1]
            out.append(Word(text, float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()), float(score)))
        return out


class Tesseract:
    name = "tesseract"

    def __init__(self, languages: str) -> None:
        if shutil.which("tesseract") is None:
            raise OcrUnavailable("RAGMESH_OCR_ENGINE=tesseract but the tesseract program is not installed")
        import pytesseract

        self.pytesseract, self.languages = pytesseract, languages

    def words(self, image: np.ndarray) -> list[Word]:
        # Tesseract lays out a page itself and cuts skewed lines into blocks: straighten it first.
        data = self.pytesseract.image_to_data(
            Image.fromarray(deskew(image)),
            lang=self.languages,
            output_type=self.pytesseract.Output.DICT,
            config="--psm 3",
        )
        out = []
        for i, text in enumerate(data["text"]):
            score = float(data["conf"][i]) / 100
            if text.strip() and score >= 0:
                left, top = data["left"][i], data["top"][i]
                line = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                out.append(Word(text, left, top, left + data["width"][i], top + data["height"][i], score, line))
        return out


def deskew(image: np.ndarray, limit: float = 5.0, step: float = 0.25) -> np.ndarray:
    """The page turned by the small angle (within ±limit degrees) that makes its text rows
    sharpest: the angle whose row sums of dark pixels vary the most, searched on a small copy."""
    grey = Image.fromarray(image).convert("L")
    small = grey.resize((max(1, grey.width // 4), max(1, grey.height // 4)))
    dark = Image.fromarray(((np.asarray(small) < 128) * 255).astype(np.uint8))

    def sharpness(angle: float) -> float:
        rows = np.asarray(dark.rotate(angle, resample=Image.Resampling.NEAREST, expand=True)).sum(axis=1)
        return float(np.var(rows))

    best = max(np.arange(-limit, limit + step / 2, step), key=sharpness)
    if abs(best) < step:
        return np.asarray(grey)
    return np.asarray(grey.rotate(float(best), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255))


@cache
def engine(name: str, languages: str = "eng"):
    """One engine per process, made on first use (loading models takes seconds)."""
    if name == "rapidocr":
        return RapidOcr()
    if name == "tesseract":
        return Tesseract(languages)
    raise OcrUnavailable(f"unknown OCR engine {name!r}: use rapidocr, tesseract or off")


def _lines(words: list[Word]) -> list[list[Word]]:
    """Words whose vertical centres fall within half a line height of each other share a line."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.top + w.bottom) / 2):
        centre = (word.top + word.bottom) / 2
        if lines:
            last = lines[-1]
            last_centre = sum((w.top + w.bottom) / 2 for w in last) / len(last)
            if abs(centre - last_centre) <= 0.5 * max(word.height, last[0].height):
                last.append(word)
                continue
        lines.append([word])
    return [sorted(line, key=lambda w: w.left) for line in lines]


def _engine_paragraphs(words: list[Word]) -> list[str]:
    """Paragraphs as the engine laid them out (Tesseract follows skewed lines, which a grouping by
    height would cut across)."""
    paragraphs: dict[tuple[int, ...], dict[tuple[int, ...], list[str]]] = {}
    for word in words:
        paragraphs.setdefault(word.line[:2], {}).setdefault(word.line, []).append(word.text.strip())
    return ["\n".join(" ".join(line) for line in lines.values()) for lines in paragraphs.values()]


def paragraphs(words: list[Word]) -> list[str]:
    """Lines in reading order, split into paragraphs where the gap between lines is wider than a
    line; each paragraph is its lines joined (the PDF layout step rejoins wrapped lines)."""
    words = [w for w in words if w.score >= MIN_SCORE and w.text.strip()]
    if words and all(w.line for w in words):
        return _engine_paragraphs(words)
    lines = _lines(words)
    if not lines:
        return []
    heights = sorted(max(w.height for w in line) for line in lines)
    typical = heights[len(heights) // 2]
    out, current, previous_bottom = [], [], None
    for line in lines:
        top = min(w.top for w in line)
        if current and previous_bottom is not None and top - previous_bottom > 1.0 * typical:
            out.append("\n".join(current))
            current = []
        current.append(" ".join(w.text.strip() for w in line))
        previous_bottom = max(w.bottom for w in line)
    out.append("\n".join(current))
    return out


def _quality(words: list[Word]) -> float:
    return sum(len(w.text) * w.score for w in words if w.score >= MIN_SCORE)


def read_upright(ocr, image: np.ndarray) -> list[Word]:
    """Read the image (specks taken out: a 3x3 median, which lifted noisy scans from 0.34-0.78
    to 0.99+ character accuracy and costs clean ones nothing); if its text runs sideways (tall
    boxes) or reads poorly, read it turned too and keep the reading with the most confident text."""
    image = np.asarray(Image.fromarray(image).convert("L").filter(ImageFilter.MedianFilter(3)))
    words = ocr.words(image)
    if not words:
        return []
    sideways = sum(w.height > 1.5 * (w.right - w.left) for w in words) > len(words) / 2
    mean = sum(w.score for w in words) / len(words)
    turns = (1, 3) if sideways else ((2,) if mean < UPRIGHT_SCORE else ())
    best = words
    for k in turns:
        candidate = ocr.words(np.ascontiguousarray(np.rot90(image, k)))
        if _quality(candidate) > _quality(best):
            best = candidate
    return best
