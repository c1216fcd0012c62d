"""Shared benchmark plumbing: a local system on free ports, corpora, peak memory."""

import json
import os
import random
import socket
import tempfile
from pathlib import Path

from services.cli.local import Ports, admin_key
from services.cli.up import LocalSystem

ROOT = Path(__file__).resolve().parent.parent
# Throughput and latency benchmarks measure the pipeline, not the governance in front of it.
NO_LIMITS = {
    "RAGMESH_TENANT_LIMITS": json.dumps(
        {
            "default": {
                "query_rate": 0,
                "key_query_rate": 0,
                "ingest_rate": 0,
                "max_concurrent_queries": 0,
                "max_concurrent_uploads": 0,
            }
        }
    )
}
DBPEDIA = ROOT.parent / "shared" / "datasets" / "dbpedia-5k"


def free_port_base(size: int = 16) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000 - size)
        ok = True
        for port in range(base, base + size):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports")


def read_jsonl(path: Path) -> list[dict]:
    # Split on "\n" only: texts may hold Unicode line separators.
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").split("\n") if line.strip()]


class BenchSystem:
    """`ragmesh up` in a temp dir, for a benchmark run."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="ragmesh-bench-")
        self.system = LocalSystem(Path(self.tmp.name), free_port_base())
        self.extra_env = env or {}

    def __enter__(self) -> "BenchSystem":
        original = self.system.env
        self.system.env = lambda name: {**original(name), **self.extra_env}
        self.gateway = self.system.start()
        self.key = admin_key(self.system.data)
        return self

    def __exit__(self, *exc) -> None:
        self.system.stop()
        self.tmp.cleanup()

    @property
    def ports(self) -> Ports:
        return self.system.ports

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each process has used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        out = {}
        for name, proc in self.system.procs.items():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[name] = round((int(fields[11]) + int(fields[12])) / ticks, 1)
            except OSError:
                pass
        return out

    def peak_rss_mb(self) -> float:
        """Sum over every process of its peak resident set (VmHWM), in MiB."""
        total = 0
        for proc in self.system.procs.values():
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024
