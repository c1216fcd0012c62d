"""What `ragmesh up` prints once the system is ready: the commands a newcomer types next, and where
the logs and traces are."""

import os
import shlex
import shutil
import sys
from pathlib import Path

from services.cli.local import data_dir

EXAMPLE_FOLDER = "~/Documents/handbook"
EXAMPLE_QUESTION = "How do we rotate the on-call schedule?"


def command_name(argv0: str = "", on_path: str | None = None, cwd: Path | None = None) -> str:
    """How to call this `ragmesh` from another terminal: `ragmesh` when that name on PATH is this
    one, else its path (relative to here when inside it, e.g. `.venv/bin/ragmesh` under `make run`),
    else `python -m services.cli` with this interpreter."""
    argv0 = argv0 or sys.argv[0]
    cwd = cwd or Path.cwd()
    script = Path(argv0)
    if script.name != "ragmesh" or not script.exists():
        return f"{shlex.quote(sys.executable)} -m services.cli"
    script = script.resolve()
    found = on_path if on_path is not None else shutil.which("ragmesh")
    if found and Path(found).resolve() == script:
        return "ragmesh"
    return shlex.quote(str(script.relative_to(cwd)) if script.is_relative_to(cwd) else str(script))


def next_steps(data: Path, ragmesh: str, environ: dict[str, str] | None = None) -> list[str]:
    """The lines after `ragmesh ready`: ingest a folder, ask, see the trace; logs and traces."""
    environ = os.environ if environ is None else environ
    # Other commands find the gateway and the key in the data dir; name it when they would not.
    default = data_dir(environ.get("RAGMESH_DATA_DIR"))
    where = "" if data.resolve() == default else f" --data-dir {shlex.quote(str(data))}"
    return [
        "next, in another terminal:",
        f"  {ragmesh} ingest {EXAMPLE_FOLDER}{where} --public --wait"
        "   # a folder of PDF, DOCX, HTML, Markdown, CSV or text files",
        f"  {ragmesh} ask {shlex.quote(EXAMPLE_QUESTION)}{where}   # a cited answer, or an abstention",
        f"  {ragmesh} trace --last{where}   # where that answer's time went",
        f"logs: {data / 'logs'}/<service>.log   traces: {data / 'traces' / 'spans.jsonl'}",
        "Ctrl-C stops everything.",
    ]
