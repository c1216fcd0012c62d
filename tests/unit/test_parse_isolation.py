"""Parsing in separate processes under limits: a pathological document fails with its reason,
costs at most its limit, and the next document is parsed by a fresh process."""

import asyncio
import os
import signal

import pytest

from benchmarks.documents import pdf_bomb
from services.ingest.document import DocumentError
from services.ingest.parsing import ParseOptions
from services.ingest.parsing.isolation import STOPPED, Limits, ParserPool, ParserUnavailable

TEXT = b"The river froze on day four of the winter survey."
UNCAPPED = ParseOptions(pdf_max_content_bytes=1 << 40)  # so the CPU limit, not the cap, stops the bomb


@pytest.fixture
def pool():
    pool = ParserPool(2, Limits(cpu_seconds=3, wall_seconds=120, memory_bytes=1024 << 20))
    yield pool
    pool.close()


async def test_a_document_is_parsed_in_another_process_which_is_reused(pool):
    first = await pool.parse(TEXT, ParseOptions(source_name="a.txt"))
    (pid,) = pool.pids
    second = await pool.parse(b"<p>Hello <b>there</b></p>", ParseOptions(content_type="text/html"))
    assert first.text == TEXT.decode() and second.text == "Hello there"
    assert pool.pids == [pid] and pid != os.getpid()


async def test_a_pathological_pdf_fails_at_its_cpu_limit_while_another_document_goes_through(pool):
    await pool.parse(TEXT, ParseOptions())  # one process started and idle: the bomb takes it
    (bomb_pid,) = pool.pids
    bomb = asyncio.create_task(pool.parse(pdf_bomb(), UNCAPPED))
    await asyncio.sleep(0.5)
    other = await pool.parse(TEXT, ParseOptions())  # the second process: not behind the bomb
    assert other.text == TEXT.decode() and not bomb.done()
    stopped = STOPPED.labels("cpu_time")._value.get()
    with pytest.raises(DocumentError, match="^parsing used more than its 3 s of CPU time$"):
        await bomb
    assert STOPPED.labels("cpu_time")._value.get() == stopped + 1
    assert bomb_pid not in pool.pids  # killed, never reused
    after = await pool.parse(TEXT, ParseOptions())
    assert after.text == TEXT.decode()


async def test_loading_the_ocr_models_is_not_charged_to_the_first_document():
    # Loading RapidOCR's models costs about a second of CPU, once per process, before the account starts.
    pool = ParserPool(1, Limits(cpu_seconds=0.3, wall_seconds=120, memory_bytes=1024 << 20))
    try:
        parsed = await pool.parse(TEXT, ParseOptions(ocr_engine="rapidocr"))
        assert parsed.text == TEXT.decode()
    finally:
        pool.close()


async def test_the_wall_time_limit_ends_a_parse():
    pool = ParserPool(1, Limits(cpu_seconds=600, wall_seconds=1.5, memory_bytes=1024 << 20))
    try:
        with pytest.raises(DocumentError, match="^parsing took longer than its 1.5 s$"):
            await pool.parse(pdf_bomb(), UNCAPPED)
        assert pool.pids == []
    finally:
        pool.close()


async def test_the_memory_limit_ends_a_parse():
    pool = ParserPool(1, Limits(cpu_seconds=600, wall_seconds=600, memory_bytes=300 << 20))
    try:
        await pool.parse(TEXT, ParseOptions())  # the process and its imports fit
        big = b"\n\n".join([b"word " * 2000] * 20000)  # 200 MB of text, copied several times while cleaned
        with pytest.raises(DocumentError, match="^parsing needed more than its 300 MiB of memory$"):
            await pool.parse(big, ParseOptions())
    finally:
        pool.close()


async def test_a_parsing_process_killed_from_outside_fails_the_document_with_the_signal(pool):
    await pool.parse(TEXT, ParseOptions())  # started and idle: the bomb reaches it at once
    bomb = asyncio.create_task(pool.parse(pdf_bomb(), UNCAPPED))
    await asyncio.sleep(1.0)
    os.kill(pool.pids[0], signal.SIGKILL)
    with pytest.raises(DocumentError, match=r"^the parsing process died on this document \(killed by SIGKILL\)$"):
        await bomb


@pytest.mark.parametrize(
    "data, options, reason",
    [
        (b"a,b\n" + b'"' + b"x" * (2 << 20) + b'",1\n', ParseOptions(source_name="t.csv"), "field larger than"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 40, ParseOptions(), "the PDF cannot be read"),
        (b"\x00\x01\x02\xff" * 100, ParseOptions(), "binary"),
        (b"PK\x03\x04 not really a zip", ParseOptions(source_name="a.docx"), "not a valid zip"),
    ],
)
async def test_every_bad_input_is_a_permanent_document_error(pool, data, options, reason):
    with pytest.raises(DocumentError, match=reason):
        await pool.parse(data, options)
    assert (await pool.parse(TEXT, ParseOptions())).text == TEXT.decode()  # the process is still good


async def test_an_ocr_engine_that_cannot_run_here_is_an_infrastructure_error_retried(pool):
    from benchmarks.documents import picture, scanned_pdf

    with pytest.raises(ParserUnavailable, match="unknown OCR engine"):
        await pool.parse(scanned_pdf([picture("Some text.")]), ParseOptions(ocr_engine="unknown"))


SERVICE = """
import asyncio, sys
from benchmarks.documents import pdf_bomb
from services.ingest.parsing import ParseOptions
from services.ingest.parsing.isolation import Limits, ParserPool

async def main():
    pool = ParserPool(1, Limits(cpu_seconds=600, wall_seconds=600))
    await pool.parse(b"warm", ParseOptions())
    print(pool.pids[0], flush=True)
    await pool.parse(pdf_bomb(), ParseOptions(pdf_max_content_bytes=1 << 40))

asyncio.run(main())
"""


def test_a_parsing_process_dies_with_the_service_that_started_it(tmp_path):
    """An ingest process killed outright leaves no parse running unwatched."""
    import subprocess
    import sys
    import time

    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    try:
        child = int(service.stdout.readline())
        time.sleep(1.0)  # the bomb is being parsed
        assert os.path.exists(f"/proc/{child}")
        service.kill()
        service.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{child}")
    finally:
        service.kill()
