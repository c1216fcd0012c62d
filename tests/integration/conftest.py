"""A Qdrant server for the tests that talk to one: the real one at RAGMESH_TEST_QDRANT_URL, or else
the local server speaking its REST protocol (tests/qdrant_server.py)."""

import os
import uuid

import pytest
from qdrant_client import QdrantClient
from qdrant_server import QdrantServer

REAL_QDRANT_URL = os.environ.get("RAGMESH_TEST_QDRANT_URL", "")


@pytest.fixture(scope="session")
def qdrant_server():
    if REAL_QDRANT_URL:
        yield None
        return
    fake = QdrantServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def qdrant_url(qdrant_server) -> str:
    return REAL_QDRANT_URL or qdrant_server.url


@pytest.fixture
def qdrant_fake(qdrant_server) -> QdrantServer:
    """The local server, for what a real Qdrant cannot be made to do (fail on demand, be inspected)."""
    if qdrant_server is None:
        pytest.skip("needs the local server: a real Qdrant does not fail on demand")
    qdrant_server.fail_writes(0)
    return qdrant_server


@pytest.fixture
def qdrant_collection(qdrant_url) -> str:
    """A fresh collection name; the collection is removed afterwards (a real server outlives the test)."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    client = QdrantClient(url=qdrant_url, timeout=30, check_compatibility=False)
    client.delete_collection(name)
    client.close()
