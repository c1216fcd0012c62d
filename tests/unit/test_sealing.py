"""Upload passwords are sealed: never in clear in what is stored, bound to their document version."""

import base64
import os
import stat

import pytest

from services.ingest.sealing import KEY_FILE, Sealer, SealError, load_key


def test_a_sealed_password_opens_only_for_its_own_document_version(tmp_path):
    sealer = Sealer(load_key("", tmp_path))
    sealed = sealer.seal("harbour-7731", "t1", "deck.pdf", 3)
    assert b"harbour-7731" not in sealed and len(sealed) == 12 + len("harbour-7731") + 16
    assert sealer.open(sealed, "t1", "deck.pdf", 3) == "harbour-7731"
    for other in [("t2", "deck.pdf", 3), ("t1", "other.pdf", 3), ("t1", "deck.pdf", 4)]:
        with pytest.raises(SealError, match="sealed with another key"):
            sealer.open(sealed, *other)
    assert sealer.seal("", "t1", "deck.pdf", 3) == b"" and sealer.open(b"", "t1", "deck.pdf", 3) == ""


def test_the_generated_key_is_private_and_kept_and_a_configured_one_wins(tmp_path):
    key = load_key("", tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode) == 0o600
    assert load_key("", tmp_path) == key
    configured = os.urandom(32)
    assert load_key(base64.b64encode(configured).decode(), tmp_path) == configured
    sealed = Sealer(key).seal("pw", "t", "d", 1)
    with pytest.raises(SealError):
        Sealer(configured).open(sealed, "t", "d", 1)
    with pytest.raises(ValueError, match="32 bytes"):
        load_key(base64.b64encode(b"short").decode(), tmp_path)
