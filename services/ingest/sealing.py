"""Upload passwords (for encrypted PDFs) sealed with AES-GCM before they are written anywhere: the
job message and the registry hold only the sealed bytes, bound to their document version, so a
copy of NATS's storage reveals no password and a sealed one cannot be moved to another document."""

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "upload-secret.key"


class SealError(Exception):
    """A sealed password that this key cannot open."""


def load_key(secret: str, data_dir: Path) -> bytes:
    """The configured key (base64 of 32 bytes), or one generated once in the data folder."""
    if secret:
        try:
            key = base64.b64decode(secret, validate=True)
        except binascii.Error as exc:
            raise ValueError("RAGMESH_UPLOAD_SECRET is not base64") from exc
        if len(key) != 32:
            raise ValueError(f"RAGMESH_UPLOAD_SECRET must hold 32 bytes, not {len(key)}")
        return key
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as f:
            f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)))
    return base64.b64decode(path.read_bytes())


def _context(tenant: str, doc_id: str, version: int) -> bytes:
    return f"{tenant}\0{doc_id}\0{version}".encode()


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, password: str, tenant: str, doc_id: str, version: int) -> bytes:
        if not password:
            return b""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, password.encode(), _context(tenant, doc_id, version))

    def open(self, sealed: bytes, tenant: str, doc_id: str, version: int) -> str:
        if not sealed:
            return ""
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], _context(tenant, doc_id, version)).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError(
                "the upload's password was sealed with another key: give every ingest replica the same "
                "RAGMESH_UPLOAD_SECRET"
            ) from exc
