"""Where a local `ragmesh up` keeps its state, and how clients find it."""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.cli.private import create_private, private_folder
from services.common import nats_access

DEFAULT_PORT_BASE = 50050
SERVICES = ("embed", "generate", "retrieve", "ingest", "gateway")  # start order: dependencies first
OFFSETS = {"nats": 0, "gateway": 1, "ingest": 2, "embed": 3, "retrieve": 4, "generate": 5, "otlp": 6, "llm": 7}
METRICS_OFFSET = 10


def data_dir(value: str | Path | None = None) -> Path:
    return Path(value or os.environ.get("RAGMESH_DATA_DIR") or ".ragmesh").resolve()


@dataclass(frozen=True)
class Ports:
    base: int

    def grpc(self, name: str) -> int:
        return self.base + OFFSETS[name]

    def metrics(self, name: str) -> int:
        return self.base + METRICS_OFFSET + OFFSETS[name]

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.grpc(name)}"


def admin_key(data: Path) -> str:
    """The bootstrap operator key of this data dir, created on first start (owner-only)."""
    path = private_folder(data) / "admin.key"
    create_private(path, "rmk_" + secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def nats_passwords(data: Path) -> dict[str, str]:
    """The password of each service's NATS user, created on first start (owner-only)."""
    path = private_folder(data) / "nats-users.json"
    create_private(path, json.dumps({user: secrets.token_urlsafe(32) for user in nats_access.GRANTS}) + "\n")
    return json.loads(path.read_text())


def write_endpoint(data: Path, gateway: str) -> None:
    (data / "ragmesh.json").write_text(json.dumps({"gateway": gateway, "pid": os.getpid()}) + "\n")


def client_target(data: Path) -> tuple[str, str]:
    """(gateway address, API key): environment first, then the data dir of `ragmesh up`."""
    addr = os.environ.get("RAGMESH_ADDR", "")
    key = os.environ.get("RAGMESH_API_KEY", "")
    if not addr and (data / "ragmesh.json").exists():
        addr = json.loads((data / "ragmesh.json").read_text())["gateway"]
    if not key and (data / "admin.key").exists():
        key = (data / "admin.key").read_text().strip()
    return addr or f"127.0.0.1:{DEFAULT_PORT_BASE + OFFSETS['gateway']}", key
