"""Parsing as untrusted work: each document is parsed in a pool of separate processes, under a
CPU-time, a wall-time and a memory limit. Past a limit the process is killed (and replaced on the
next document) and the document fails with the reason; a pathological file costs at most its
limits and holds one process, never the service.

Every error of the parse itself is permanent (a DocumentError): the same bytes fail the same way.
Only infrastructure problems (a process that cannot be started, an OCR engine not installed)
raise ParserUnavailable, which the job retries.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection

from prometheus_client import Counter

from services.ingest.document import DocumentError, ParsedDocument
from services.ingest.parsing.options import ParseOptions

POLL_SECONDS = 0.05
STOPPED = Counter(
    "ragmesh_ingest_parse_stopped_total",
    "Documents whose parsing process was killed: over a limit (cpu_time, wall_time, memory) or died.",
    ["reason"],
)
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class ParserUnavailable(RuntimeError):
    """No parsing process could do the work: an infrastructure problem, worth a retry."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 300.0
    wall_seconds: float = 600.0
    memory_bytes: int = 2048 * 1024 * 1024


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, and the children it has waited for
    (a Tesseract run per page), from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE


def _died(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class ParserProcess:
    """One parsing process and its two pipes; `run` is blocking (called from a thread)."""

    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # A fresh interpreter (not a fork of this threaded, asyncio process) that imports only parsing.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest.parsing.child", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for the service does not reach it mid-document
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.send = Connection(to_child_w, readable=False)
        self.receive = Connection(from_child_r, writable=False)
        self.documents = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """The process and whatever it started (a Tesseract run): they share its process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self.send.close()
        self.receive.close()

    def run(self, data: bytes, options: ParseOptions, limits: Limits) -> ParsedDocument:
        pid = self.pid
        try:
            self.send.send((data, options))
        except (OSError, ValueError) as exc:
            self.kill()
            raise ParserUnavailable(f"the parsing process stopped before the document reached it: {exc}") from exc
        started = time.monotonic()
        # The CPU account starts when the child says so, once its OCR models are loaded (the
        # installation's cost, paid once per process); the wall and memory limits hold throughout.
        cpu_before: float | None = None
        while True:
            if self.receive.poll(POLL_SECONDS):
                if cpu_before is not None:
                    break
                try:
                    self.receive.recv()
                    cpu_before = _cpu_seconds(pid)
                except (EOFError, OSError, ValueError):
                    break  # died: reported below
                continue
            if not self.alive():
                break
            try:
                cpu = _cpu_seconds(pid) - cpu_before if cpu_before is not None else 0.0
                rss = _rss_bytes(pid)
            except (OSError, ValueError, IndexError):
                continue  # exiting right now: the next poll sees it
            limit, reason = None, ""
            if cpu > limits.cpu_seconds:
                limit, reason = "cpu_time", f"parsing used more than its {limits.cpu_seconds:g} s of CPU time"
            elif time.monotonic() - started > limits.wall_seconds:
                limit, reason = "wall_time", f"parsing took longer than its {limits.wall_seconds:g} s"
            elif rss > limits.memory_bytes:
                limit = "memory"
                reason = f"parsing needed more than its {limits.memory_bytes // (1024 * 1024)} MiB of memory"
            if limit is not None:
                self.kill()
                STOPPED.labels(limit).inc()
                raise DocumentError(reason)
        try:
            status, value = self.receive.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            STOPPED.labels("died").inc()
            died = _died(self.process.returncode)
            raise DocumentError(f"the parsing process died on this document ({died})") from exc
        self.documents += 1
        if status == "ok":
            return value
        if status == "unavailable":
            raise ParserUnavailable(value)
        raise DocumentError(value)


class ParserPool:
    """At most `size` documents parsed at once, each in its own process; callers beyond that wait
    their turn in order. Processes start on first use and are reused until a limit kills one."""

    def __init__(self, size: int, limits: Limits) -> None:
        self.size, self.limits = max(1, size), limits
        self._idle: list[ParserProcess] = []
        self._all: set[ParserProcess] = set()
        self._slots: asyncio.Semaphore | None = None
        self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="parse")

    async def parse(self, data: bytes, options: ParseOptions) -> ParsedDocument:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        loop = asyncio.get_running_loop()
        async with self._slots:
            process = self._take()
            if process is None:
                try:  # started from the event loop's thread: the process dies with this one (see child)
                    process = ParserProcess()
                except OSError as exc:
                    raise ParserUnavailable(f"no parsing process could be started: {exc}") from exc
                self._all.add(process)
            finished = False
            try:
                result = await loop.run_in_executor(self._threads, process.run, data, options, self.limits)
                finished = True
                return result
            except (DocumentError, ParserUnavailable):
                finished = True
                raise
            finally:
                if finished and process.alive():
                    self._idle.append(process)
                else:  # killed by a limit, died, or abandoned mid-document (cancelled): never reused
                    process.kill()
                    self._all.discard(process)

    def _take(self) -> ParserProcess | None:
        while self._idle:
            process = self._idle.pop()
            if process.alive():
                return process
            process.kill()
            self._all.discard(process)
        return None

    @property
    def pids(self) -> list[int]:
        return sorted(p.pid for p in self._all)

    def close(self) -> None:
        for process in list(self._all):
            process.kill()
        self._all.clear()
        self._idle.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)
