"""One build of the tiered dense index: copies of sealed shards, the process that builds them into
one shard, and the log of every change made to the originals meanwhile (replayed onto the result
before it replaces them)."""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.retrieve.backends.edge_layout import ShardConfig, copy_flushed_shard

BUILDER = "services.retrieve.backends.hnsw_builder"


@dataclass
class BuildJob:
    name: str
    kind: str  # "fresh": shards never built; "merge": built shards merged into a larger one
    inputs: tuple[str, ...]
    folder: Path
    started: float = field(default_factory=time.monotonic)
    process: subprocess.Popen | None = None
    # Updates applied to any input since before the first copy, in order. Replaying one a copy
    # already holds changes nothing: each deletes, or sets fields to fixed values, by filters on
    # fields no update changes (ids, document, version).
    log: list = field(default_factory=list)

    def begin(self, config: ShardConfig, graph: bool) -> None:
        self.folder.mkdir(parents=True)
        body = {"inputs": list(self.inputs), "config": asdict(config), "graph": graph}
        (self.folder / "job.json").write_text(json.dumps(body))

    def copy_input(self, name: str, folder: Path) -> None:
        """Copy one input, just flushed and not written until this returns."""
        copy_flushed_shard(folder, self.folder / "in" / name)

    def spawn(self) -> None:
        with open(self.folder / "build.log", "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", BUILDER, str(self.folder), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def finished(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    @property
    def succeeded(self) -> bool:
        return self.process.returncode == 0 and (self.folder / "done.json").exists()

    def report(self) -> dict:
        return json.loads((self.folder / "done.json").read_text())

    def output(self) -> Path:
        return self.folder / "out"

    def failure(self) -> str:
        """The end of what the build process wrote, for the log."""
        try:
            text = (self.folder / "build.log").read_text(errors="replace")
        except OSError:
            text = ""
        return f"exit status {self.process.returncode}: {text[-2000:].strip()}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def discard(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
