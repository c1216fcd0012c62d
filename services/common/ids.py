"""Identity: content hashes, deterministic chunk ids, registry keys."""

import base64
import hashlib
import re
import uuid

# Fixed namespace so chunk ids are the same on every machine and every run.
CHUNK_NAMESPACE = uuid.UUID("6f1d3c8e-2b5a-5e7f-9c41-8a2d6b0e4f13")
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DOC_ID_MAX = 512


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_id(tenant: str, doc_id: str, version: int, ordinal: int) -> str:
    """UUIDv5 of tenant/doc/version/ordinal: re-applying the same chunk is a no-op."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{tenant}\x1f{doc_id}\x1f{version}\x1f{ordinal}"))


def token(value: str) -> str:
    """A string as a NATS-subject/KV-key-safe token (urlsafe base64, no padding)."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def untoken(value: str) -> str:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()


def doc_key(tenant: str, doc_id: str) -> str:
    return f"{tenant}.{token(doc_id)}"


def valid_tenant(tenant: str) -> bool:
    return bool(TENANT_PATTERN.match(tenant))


def valid_doc_id(doc_id: str) -> bool:
    return 0 < len(doc_id) <= DOC_ID_MAX and doc_id.isprintable()
