"""API keys: stored by sha256 in NATS KV, mapped to tenant, principals and role."""

import hashlib
import secrets
import time

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from rag.v1 import gateway_pb2
from services.common import natsio

KEY_PREFIX = "rmk_"


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_from_metadata(metadata) -> str:
    for name, value in metadata or ():
        if name == "x-api-key":
            return value
        if name == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
    return ""


class KeyStore:
    """Key records in NATS KV, each trusted for `cache_seconds` after it was read: a request costs no
    KV round trip, a revocation on this replica applies at once, one on another within cache_seconds.
    Expiry is checked on every request."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, clock=time.time, cache_seconds: float = 5.0) -> None:
        self.js, self.kv, self.clock, self.cache_seconds = js, kv, clock, cache_seconds
        self._read: dict[str, tuple[float, gateway_pb2.ApiKeyRecord]] = {}  # sha256 -> (read at, record)

    async def _record(self, digest: str) -> gateway_pb2.ApiKeyRecord | None:
        read = self._read.get(digest)
        if read and self.clock() - read[0] < self.cache_seconds:
            return read[1]
        try:
            entry = await self.kv.get(digest)
        except KeyNotFoundError:
            self._read.pop(digest, None)
            return None
        record = gateway_pb2.ApiKeyRecord.FromString(entry.value)
        self._read[digest] = (self.clock(), record)
        return record

    async def lookup(self, api_key: str) -> tuple[gateway_pb2.ApiKeyRecord | None, str]:
        """The key's record, or None and why it is refused."""
        if not api_key:
            return None, "missing API key: send it as `x-api-key` metadata"
        record = await self._record(key_hash(api_key))
        if record is None:
            return None, "unknown API key"
        if record.revoked:
            return None, f"API key {record.key_id} was revoked"
        if record.expires_unix_ms and self.clock() * 1000 >= record.expires_unix_ms:
            return None, f"API key {record.key_id} expired"
        return record, ""

    async def add(
        self,
        key_sha256: str,
        tenant: str,
        principals: list[str],
        role: int,
        description: str = "",
        ttl_seconds: int = 0,
    ) -> gateway_pb2.ApiKeyRecord:
        now_ms = int(self.clock() * 1000)
        record = gateway_pb2.ApiKeyRecord(
            key_id=key_sha256[:12],
            key_sha256=key_sha256,
            tenant=tenant,
            principals=principals,
            role=role,
            description=description,
            created_unix_ms=now_ms,
            expires_unix_ms=now_ms + ttl_seconds * 1000 if ttl_seconds else 0,
        )
        await self.kv.put(key_sha256, record.SerializeToString())
        return record

    async def ensure(self, key_sha256: str, tenant: str, principals: list[str], role: int, description: str):
        """Make the key if it is missing, or give it `role` if it has another (unless revoked)."""
        try:
            record = gateway_pb2.ApiKeyRecord.FromString((await self.kv.get(key_sha256)).value)
        except KeyNotFoundError:
            await self.add(key_sha256, tenant, principals, role, description)
            return
        if record.role != role and not record.revoked:
            record.role = role
            await self.kv.put(key_sha256, record.SerializeToString())

    async def list(self, tenant: str = "") -> list[gateway_pb2.ApiKeyRecord]:
        records = [gateway_pb2.ApiKeyRecord.FromString(v) for v in await natsio.kv_values(self.js, natsio.KV_KEYS)]
        return sorted(
            (r for r in records if not tenant or r.tenant == tenant), key=lambda r: (r.tenant, r.created_unix_ms)
        )

    async def find(self, key_id: str) -> gateway_pb2.ApiKeyRecord | None:
        return next((record for record in await self.list() if record.key_id == key_id), None)

    async def revoke(self, record: gateway_pb2.ApiKeyRecord) -> gateway_pb2.ApiKeyRecord:
        record.revoked = True
        await self.kv.put(record.key_sha256, record.SerializeToString())
        self._read.pop(record.key_sha256, None)
        return record
