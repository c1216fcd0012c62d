"""Parsing real-world documents, through the isolated parser pool as ingestion runs it:

- OCR: pages/s and character/word accuracy on PDFs rendered from known text (clean at 150, 200
  and 300 dpi, skewed, noisy, turned), for RapidOCR and, when installed, Tesseract;
- the pathological PDF (2,000 pages sharing one 1 MiB content stream): what it costs with the
  default caps, and with the caps lifted, the CPU its limit lets it take;
- text-layer PDFs and HTML pages per second, for scale.
"""

import argparse
import asyncio
import io
import json
import shutil
import time

from pypdf import PdfReader

from benchmarks.documents import PAGES, accuracy, degrade, pdf_bomb, picture, scanned_pdf, text_pdf
from services.common.config import IngestSettings
from services.ingest.document import DocumentError
from services.ingest.parsing.isolation import Limits, ParserPool, _cpu_seconds
from services.ingest.parsing.options import ParseOptions, options_from

CONDITIONS = {
    "clean, 200 dpi": dict(dpi=200),
    "clean, 150 dpi": dict(dpi=150),
    "clean, 300 dpi": dict(dpi=300),
    "skewed 3°, 200 dpi": dict(dpi=200, skew=3.0),
    "noisy (2% pixels), 200 dpi": dict(dpi=200, noise=0.02),
    "turned 90°, 200 dpi": dict(dpi=200, quarter_turns=1),
    "upside down, 200 dpi": dict(dpi=200, quarter_turns=2),
}


def scanned(condition: dict) -> bytes:
    dpi = condition.get("dpi", 200)
    images = [
        degrade(
            picture(text, dpi=dpi),
            condition.get("skew", 0.0),
            condition.get("noise", 0.0),
            condition.get("quarter_turns", 0),
        )
        for text in PAGES
    ]
    return scanned_pdf(images, dpi=dpi)


async def timed(pool: ParserPool, data: bytes, options: ParseOptions):
    """(result or DocumentError, wall seconds, CPU seconds of the parsing process)."""
    pid = pool.pids[0] if pool.pids else None
    cpu = _cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    try:
        result = await pool.parse(data, options)
    except DocumentError as exc:
        result = exc
    wall = time.perf_counter() - started
    used = (_cpu_seconds(pid) - cpu) if pid and pid in pool.pids else float("nan")
    return result, wall, used


async def ocr_runs(engines: list[str], settings: IngestSettings) -> list[dict]:
    rows = []
    for engine in engines:
        pool = ParserPool(1, Limits(cpu_seconds=3600, wall_seconds=3600, memory_bytes=settings.parse_memory_bytes))
        options = options_from(settings, ocr_engine=engine)
        await pool.parse(scanned({"dpi": 200}), options)  # start the process and load the models
        try:
            for name, condition in CONDITIONS.items():
                data = scanned(condition)
                doc, wall, cpu = await timed(pool, data, options)
                pages = {b.page: [] for b in doc.blocks}
                for block in doc.blocks:
                    pages[block.page].append(block.text)
                scores = [accuracy(PAGES[i], " ".join(pages.get(i + 1, []))) for i in range(len(PAGES))]
                rows.append(
                    {
                        "engine": engine,
                        "condition": name,
                        "chars": round(sum(s[0] for s in scores) / len(scores), 4),
                        "words": round(sum(s[1] for s in scores) / len(scores), 4),
                        "pages_per_s": round(len(PAGES) / wall, 3),
                        "cpu_s_per_page": round(cpu / len(PAGES), 2),
                    }
                )
                r = rows[-1]
                print(
                    f"  {engine:9s} {name:28s} chars {r['chars']:.3f}  words {r['words']:.3f}  "
                    f"{r['pages_per_s']:.2f} pages/s  {r['cpu_s_per_page']:.2f} CPU s/page"
                )
        finally:
            pool.close()
    return rows


async def pathological(settings: IngestSettings, cpu_limit: float) -> dict:
    bomb = pdf_bomb()
    reader = PdfReader(io.BytesIO(bomb))
    started = time.process_time()
    reader.pages[0].extract_text()
    one_page = time.process_time() - started
    pool = ParserPool(
        1, Limits(cpu_seconds=cpu_limit, wall_seconds=10 * cpu_limit, memory_bytes=settings.parse_memory_bytes)
    )
    try:
        await pool.parse(b"warm", ParseOptions())
        capped, capped_wall, capped_cpu = await timed(pool, bomb, options_from(settings))
        await pool.parse(b"warm", ParseOptions())
        lifted = options_from(settings.model_copy(update={"pdf_max_content_bytes": 1 << 40}))
        limited, limited_wall, _ = await timed(pool, bomb, lifted)
    finally:
        pool.close()
    out = {
        "bytes": len(bomb),
        "pypdf_cpu_s_first_page": round(one_page, 2),
        "unbounded_cpu_s_estimate": round(one_page * len(reader.pages)),
        "default_caps": str(capped),
        "default_caps_wall_s": round(capped_wall, 2),
        "default_caps_cpu_s": round(capped_cpu, 2),
        "cpu_limit_s": cpu_limit,
        "over_limit": str(limited),
        "over_limit_wall_s": round(limited_wall, 2),
        "default_cpu_limit_s": settings.parse_cpu_seconds,
    }
    estimate = out["unbounded_cpu_s_estimate"]
    print(f"  {len(bomb):,} bytes, 2,000 pages; pypdf: {one_page:.2f} CPU s for one page, ~{estimate:,} s for all")
    print(f"  default caps: failed in {capped_wall:.2f} s ({capped_cpu:.2f} CPU s): {capped}")
    print(f"  caps lifted, CPU limit {cpu_limit:g} s: failed in {limited_wall:.2f} s: {limited}")
    print(f"  the most CPU any document may take with the defaults: {settings.parse_cpu_seconds:g} s")
    return out


async def main_async(args) -> None:
    settings = IngestSettings()
    engines = ["rapidocr"] + (["tesseract"] if shutil.which("tesseract") else [])
    print(f"OCR (3 pages per condition, parser pool of 1 process; engines: {', '.join(engines)})")
    ocr = await ocr_runs(engines, settings)
    print("Pathological PDF")
    bomb = await pathological(settings, args.cpu_limit)
    pool = ParserPool(1, Limits(memory_bytes=settings.parse_memory_bytes))
    try:
        data = text_pdf(PAGES * 20)
        await pool.parse(data, options_from(settings))
        _, wall, _ = await timed(pool, data, options_from(settings))
        text_pages_per_s = round(60 / wall, 1)
    finally:
        pool.close()
    print(f"Text-layer PDF (60 pages): {text_pages_per_s} pages/s")
    print(json.dumps({"ocr": ocr, "pathological": bomb, "text_pdf_pages_per_s": text_pages_per_s}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-limit", type=float, default=20.0, help="CPU limit for the bomb run with caps lifted")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
