"""Durable state of one index generation beside its engines: the watermark (last stream sequence
applied), the embedding model and chunker versions it holds, and every document's DocState.

`LocalState` keeps it in SQLite next to embedded engines: one transaction per applied batch, so
the watermark and the document states always move together. (`SharedState`, for engines shared by
several replicas, keeps it in NATS KV: services/retrieve/shared_state.py.)
"""

import asyncio
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from rag.v1 import events_pb2, retrieve_pb2
from services.retrieve.backends.base import DocFields
from services.retrieve.plan import DocState, Key

# The layout of what the engines store (fields, analysers); a change means a new index generation.
# 5: lexical terms analysed per language (plain field for identifiers), one lexical index per
# tenant; 4: chunks stored live or pending, visibility in the engines; 3: lexical candidates from
# columns, English stop words.
INDEX_SCHEMA_VERSION = 5


def state_to_proto(state: DocState) -> retrieve_pb2.IndexDocState:
    f = state.fields
    fields = events_pb2.DocumentFields(title=f.title, acl=list(f.acl), metadata=f.meta, revision=f.revision)
    return retrieve_pb2.IndexDocState(active=state.active, floor=state.floor, highest=state.highest, fields=fields)


def state_from_proto(record: retrieve_pb2.IndexDocState) -> DocState:
    f = record.fields
    return DocState(record.active, record.floor, record.highest, DocFields.of(f.title, f.acl, f.metadata, f.revision))


def generation_name(number: int, model_id: str, chunkers: Iterable[str], schema_version: int) -> str:
    """e.g. `g2/all-MiniLM-L6-v2@8199be6f/structure-v1/schema-5`; just `g2` while it is empty."""
    if not model_id:
        return f"g{number}"
    name, _, digest = model_id.partition("@sha256:")
    chunker_names = "+".join(sorted(chunkers)) or "unknown"
    return f"g{number}/{name}@{digest[:8]}/{chunker_names}/schema-{schema_version}"


class LocalState:
    def __init__(self, path: Path, number: int = 1) -> None:
        self.path = Path(path)
        self.number = number
        self.schema_version = INDEX_SCHEMA_VERSION
        self.watermark = 0
        self.model_id = ""
        self.chunkers: set[str] = set()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS docs (tenant TEXT, doc_id TEXT, active INTEGER, state BLOB, "
            "PRIMARY KEY (tenant, doc_id))"
        )
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        self.watermark = int(meta.get("watermark", 0))
        self.model_id = meta.get("model_id", "")
        self.chunkers = {c for c in meta.get("chunker_versions", "").split(",") if c}
        self.schema_version = int(meta.get("schema", INDEX_SCHEMA_VERSION if not self.watermark else 3))

    async def load(self, keys: Iterable[Key]) -> dict[Key, DocState]:
        found = {}
        for tenant, doc_id in set(keys):
            row = self.db.execute("SELECT state FROM docs WHERE tenant=? AND doc_id=?", (tenant, doc_id)).fetchone()
            if row is not None:
                found[(tenant, doc_id)] = state_from_proto(retrieve_pb2.IndexDocState.FromString(row[0]))
        return found

    async def commit(
        self, watermark: int, model_id: str, states: dict[Key, DocState], chunkers: Iterable[str] = ()
    ) -> None:
        """Persist one applied batch atomically, then expose it. The watermark only grows."""
        watermark = max(watermark, self.watermark)
        chunkers = self.chunkers | set(chunkers)
        self.db.execute("BEGIN")
        for (tenant, doc_id), state in states.items():
            self.db.execute(
                "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)",
                (tenant, doc_id, state.active, state_to_proto(state).SerializeToString()),
            )
        for key, value in (
            ("watermark", str(watermark)),
            ("model_id", model_id),
            ("chunker_versions", ",".join(sorted(chunkers))),
            ("schema", str(self.schema_version)),
        ):
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        self.db.execute("COMMIT")
        self.watermark, self.model_id, self.chunkers = watermark, model_id, chunkers

    async def all_states(self) -> dict[Key, DocState]:
        rows = self.db.execute("SELECT tenant, doc_id, state FROM docs")
        return {(t, d): state_from_proto(retrieve_pb2.IndexDocState.FromString(b)) for t, d, b in rows}

    async def versions(self) -> dict[Key, int]:
        """The version searches see of every document that has one."""
        rows = self.db.execute("SELECT tenant, doc_id, active FROM docs WHERE active > 0")
        return {(t, d): v for t, d, v in rows}

    @property
    def generation(self) -> str:
        return generation_name(self.number, self.model_id, self.chunkers, self.schema_version)

    def close(self) -> None:
        self.db.close()

    async def destroy(self) -> None:
        self.close()
        await asyncio.to_thread(self._remove_files)

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
