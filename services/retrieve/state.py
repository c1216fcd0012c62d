"""Durable retrieve state beside the indexes: watermark, index model id, active document versions.

A document version becomes visible only when its ActivateVersion event is applied, so while a
new version is being indexed searches keep seeing the old one: never missing, never doubled.
"""

import sqlite3
from pathlib import Path

from services.retrieve.backends.base import doc_hash

# The layout of what the engines store (fields, analysers); a change means a new index generation.
# 3: lexical candidates read from columns (chunk id, document hash), English stop words dropped;
# 2: candidates from stored fields, no stop words.
INDEX_SCHEMA_VERSION = 3


class IndexState:
    def __init__(self, path: Path, number: int = 1) -> None:
        self.path = Path(path)
        self.number = number
        self.schema_version = INDEX_SCHEMA_VERSION  # the engines say which layout they opened
        self.watermark = 0
        self.model_id = ""
        self.chunkers: set[str] = set()
        self.active: dict[tuple[str, str], int] = {}
        self.active_by_hash: dict[int, int] = {}  # doc_hash -> active version, for candidates

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS active (tenant TEXT, doc_id TEXT, version INTEGER, "
            "PRIMARY KEY (tenant, doc_id))"
        )
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        self.watermark = int(meta.get("watermark", 0))
        self.model_id = meta.get("model_id", "")
        self.chunkers = {c for c in meta.get("chunker_versions", "").split(",") if c}
        self.active = {(t, d): v for t, d, v in self.db.execute("SELECT tenant, doc_id, version FROM active")}
        self.active_by_hash = {doc_hash(t, d): v for (t, d), v in self.active.items()}

    def commit(
        self,
        watermark: int,
        model_id: str,
        changes: dict[tuple[str, str], int | None],
        chunkers: set[str] = frozenset(),
    ) -> None:
        """Persist one applied batch of events atomically, then expose it in memory."""
        chunkers = self.chunkers | set(chunkers)
        self.db.execute("BEGIN")
        for (tenant, doc_id), version in changes.items():
            if version is None:
                self.db.execute("DELETE FROM active WHERE tenant=? AND doc_id=?", (tenant, doc_id))
            else:
                self.db.execute("INSERT OR REPLACE INTO active VALUES (?, ?, ?)", (tenant, doc_id, version))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('watermark', ?)", (str(watermark),))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('model_id', ?)", (model_id,))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('chunker_versions', ?)", (",".join(sorted(chunkers)),))
        self.db.execute("COMMIT")
        self.watermark, self.model_id, self.chunkers = watermark, model_id, chunkers
        for key, version in changes.items():
            if version is None:
                self.active.pop(key, None)
                self.active_by_hash.pop(doc_hash(*key), None)
            else:
                self.active[key] = version
                self.active_by_hash[doc_hash(*key)] = version

    @property
    def generation(self) -> str:
        """e.g. `g2/all-MiniLM-L6-v2@8199be6f/structure-v1/schema-3`; just `g2` while it is empty."""
        if not self.model_id:
            return f"g{self.number}"
        name, _, digest = self.model_id.partition("@sha256:")
        chunkers = "+".join(sorted(self.chunkers)) or "unknown"
        return f"g{self.number}/{name}@{digest[:8]}/{chunkers}/schema-{self.schema_version}"

    def visible(self, tenant: str, doc_id: str, version: int) -> bool:
        return self.active.get((tenant, doc_id)) == version

    def visible_candidate(self, doc: int, version: int) -> bool:
        """By document hash: candidates carry no names. Final hits are checked again by name."""
        return self.active_by_hash.get(doc) == version

    def close(self) -> None:
        self.db.close()

    def destroy(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
