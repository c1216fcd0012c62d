"""A parsing process (started by isolation.ParserProcess): documents in on one pipe, results out on
the other, until the parent closes the pipe."""

import contextlib
import ctypes
import os
import signal
import sys
from multiprocessing.connection import Connection

from services.ingest.document import DocumentError
from services.ingest.parsing import ocr
from services.ingest.parsing.ocr import OcrUnavailable
from services.ingest.parsing.registry import parse, registered

PR_SET_PDEATHSIG = 1
STARTED = ("started", None)


def outcome(data: bytes, options) -> tuple[str, object]:
    """('ok', ParsedDocument), ('invalid', reason) for a document that cannot be parsed, or
    ('unavailable', reason) for a problem of this installation."""
    try:
        return "ok", parse(data, options)
    except DocumentError as exc:
        return "invalid", str(exc)
    except OcrUnavailable as exc:
        return "unavailable", str(exc)
    except RecursionError:
        return "invalid", "the document is nested too deeply to parse"
    except MemoryError:
        return "invalid", "the document needs more memory than parsing may use"
    except Exception as exc:  # the same bytes fail the same way: a property of the document
        return "invalid", f"the document cannot be parsed ({type(exc).__name__}: {exc})"


def die_with_parent() -> None:
    """Killed when the ingest process that started this one dies (even by SIGKILL): nobody would be
    left to watch this process's limits."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent was already gone before the line above
            os._exit(1)


def main(receive_fd: int, send_fd: int) -> None:
    die_with_parent()
    receive = Connection(receive_fd, writable=False)
    send = Connection(send_fd, readable=False)
    registered()  # import every format before the first document, not during it
    while True:
        try:
            data, options = receive.recv()
        except (EOFError, OSError):
            return
        # Loading the OCR models (seconds of CPU, once per process) is this installation's cost,
        # not the document's: load them before telling the parent its CPU account starts.
        if options.ocr_engine != "off":
            # Whatever fails here fails again, and is classified, if the document needs OCR.
            with contextlib.suppress(Exception):
                ocr.engine(options.ocr_engine, options.ocr_languages)
        send.send(STARTED)
        send.send(outcome(data, options))
        del data


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
