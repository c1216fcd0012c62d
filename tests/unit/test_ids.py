import uuid

from services.common.ids import chunk_id, doc_key, sha256_hex, token, untoken, valid_doc_id, valid_tenant


def test_chunk_ids_are_deterministic_uuid5_and_tenant_scoped():
    a = chunk_id("t1", "doc", 1, 0)
    assert a == chunk_id("t1", "doc", 1, 0)
    assert uuid.UUID(a).version == 5
    assert a != chunk_id("t2", "doc", 1, 0) != chunk_id("t1", "doc", 2, 0) != chunk_id("t1", "doc", 1, 1)


def test_hash_and_tokens():
    assert sha256_hex(b"abc").startswith("ba7816bf")
    for value in ["a/b c.d*>", "ünïcødé", "x" * 300]:
        assert untoken(token(value)) == value
        assert all(ch.isalnum() or ch in "-_" for ch in token(value))
    assert doc_key("t", "a.b") == f"t.{token('a.b')}"


def test_validation():
    assert valid_tenant("acme-1") and not valid_tenant("") and not valid_tenant("Acme") and not valid_tenant("a.b")
    assert valid_doc_id("x") and not valid_doc_id("") and not valid_doc_id("a\nb") and not valid_doc_id("x" * 513)
