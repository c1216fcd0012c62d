"""The local Qdrant REST server (tests/qdrant_server.py) under plain qdrant-client calls: the
answers qdrant-client's local mode gives for the same operations, errors and limits as Qdrant's,
several processes sharing one server. With RAGMESH_TEST_QDRANT_URL set the same tests run against
that Qdrant server instead (the parts that need the local server skip)."""

import json
import subprocess
import sys
import uuid

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_server import QdrantServer

from services.retrieve.backends.qdrant_server import QdrantServerIndex

DIM = 8
N = 57  # points in a filled collection: more than five pages of ten
KINDS = ("a", "b", "c")


def vector(i: int) -> list[float]:
    v = np.random.default_rng(i).normal(size=DIM)
    return (v / np.linalg.norm(v)).tolist()


def payload(i: int) -> dict:
    return {"n": i, "kind": KINDS[i % 3], "tags": ["even" if i % 2 == 0 else "odd"], "group": {"id": i % 4}}


@pytest.fixture
def client(qdrant_url):
    c = QdrantClient(url=qdrant_url, timeout=30)
    yield c
    c.close()


@pytest.fixture
def local():
    """qdrant-client's local mode: the reference the server's answers are compared with."""
    c = QdrantClient(location=":memory:")
    yield c
    c.close()


def fill(c: QdrantClient, name: str, n: int = N) -> None:
    c.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    points = [models.PointStruct(id=i, vector=vector(i), payload=payload(i)) for i in range(n)]
    c.upsert(name, points, wait=True)


def everything(c: QdrantClient, name: str) -> dict:
    points, _ = c.scroll(name, limit=1000, with_payload=True)
    return {p.id: p.payload for p in points}


def status_and_error(exc: UnexpectedResponse) -> tuple[int, str]:
    return exc.status_code, exc.structured()["status"]["error"]


# -- plain qdrant-client calls --------------------------------------------------------------------

FILTERS = {
    "range and must_not": (
        models.Filter(
            must=[models.FieldCondition(key="n", range=models.Range(gte=10, lt=30))],
            must_not=[models.FieldCondition(key="kind", match=models.MatchValue(value="a"))],
        ),
        lambda i: 10 <= i < 30 and KINDS[i % 3] != "a",
    ),
    "any and nested key": (
        models.Filter(
            must=[
                models.FieldCondition(key="kind", match=models.MatchAny(any=["b", "c"])),
                models.FieldCondition(key="group.id", match=models.MatchValue(value=2)),
            ]
        ),
        lambda i: KINDS[i % 3] in ("b", "c") and i % 4 == 2,
    ),
    "should over an array": (
        models.Filter(
            should=[
                models.FieldCondition(key="n", range=models.Range(lte=3)),
                models.FieldCondition(key="tags", match=models.MatchValue(value="odd")),
            ]
        ),
        lambda i: i <= 3 or i % 2 == 1,
    ),
    "except and has_id": (
        models.Filter(
            must=[
                models.FieldCondition(key="kind", match=models.MatchExcept(**{"except": ["c"]})),
                models.HasIdCondition(has_id=[1, 2, 3, 4, 5, 40]),
            ]
        ),
        lambda i: i in (1, 3, 4, 40),
    ),
}


def test_filtered_counts_and_nearest_points_match_local_mode(client, local, qdrant_collection):
    fill(client, qdrant_collection)
    fill(local, qdrant_collection)
    assert client.count(qdrant_collection).count == local.count(qdrant_collection).count == N
    for label, (where, keeps) in FILTERS.items():
        expected = {i for i in range(N) if keeps(i)}
        assert client.count(qdrant_collection, count_filter=where, exact=True).count == len(expected), label
        found = client.query_points(qdrant_collection, query=vector(1000), query_filter=where, limit=N).points
        reference = local.query_points(qdrant_collection, query=vector(1000), query_filter=where, limit=N).points
        assert {p.id for p in found} == expected, label
        assert [p.id for p in found] == [p.id for p in reference], label
        assert [p.score for p in found] == pytest.approx([p.score for p in reference], abs=1e-5), label


def test_query_returns_the_payload_fields_and_vectors_asked_for(client, qdrant_collection):
    fill(client, qdrant_collection)
    include = models.PayloadSelectorInclude(include=["n", "group"])
    [best, *_] = client.query_points(
        qdrant_collection, query=vector(12), limit=3, with_payload=include, with_vectors=True
    ).points
    assert best.id == 12 and best.score == pytest.approx(1.0, abs=1e-5)
    assert best.payload == {"n": 12, "group": {"id": 0}}
    assert best.vector == pytest.approx(vector(12), abs=1e-5)
    [bare] = client.query_points(qdrant_collection, query=vector(12), limit=1, with_payload=False).points
    assert (bare.id, bare.payload, bare.vector) == (12, None, None)


def test_search_endpoint_answers_as_query(client, local, qdrant_url, qdrant_collection):
    """POST /points/search: no longer called by qdrant-client, still served by Qdrant."""
    fill(client, qdrant_collection)
    fill(local, qdrant_collection)
    where, keeps = FILTERS["range and must_not"]
    body = {"vector": vector(5), "limit": 4, "filter": where.model_dump(exclude_none=True), "with_payload": ["n"]}
    answer = httpx.post(f"{qdrant_url}/collections/{qdrant_collection}/points/search", json=body, timeout=30).json()
    reference = local.query_points(
        qdrant_collection, query=vector(5), query_filter=where, limit=4, with_payload=["n"]
    ).points
    assert answer["status"] == "ok"
    assert [(p["id"], p["payload"]) for p in answer["result"]] == [(p.id, p.payload) for p in reference]
    assert len(answer["result"]) == 4 and all(keeps(p["id"]) for p in answer["result"])


def test_delete_by_filter_with_range_and_must_not_matches_local_mode(client, local, qdrant_collection):
    where, keeps = FILTERS["range and must_not"]
    for c in (client, local):
        fill(c, qdrant_collection)
        c.delete(qdrant_collection, models.FilterSelector(filter=where), wait=True)
    survivors = {i for i in range(N) if not keeps(i)}
    assert set(everything(client, qdrant_collection)) == survivors == set(everything(local, qdrant_collection))
    client.delete(qdrant_collection, models.PointIdsList(points=[0, 1, 999]), wait=True)
    assert client.count(qdrant_collection).count == len(survivors) - 2


def test_payload_set_overwritten_and_keys_deleted_as_local_mode(client, local, qdrant_collection):
    where = models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value="b"))])
    for c in (client, local):
        fill(c, qdrant_collection)
        c.set_payload(qdrant_collection, {"flag": True, "group": {"name": "g"}}, points=where, wait=True)
        c.overwrite_payload(qdrant_collection, {"only": "this"}, points=[0, 3], wait=True)
        c.delete_payload(qdrant_collection, ["tags", "n"], points=models.FilterSelector(filter=where), wait=True)
        c.set_payload(qdrant_collection, {"deep": 1}, points=[6], key="group", wait=True)
    stored = everything(client, qdrant_collection)
    assert stored == everything(local, qdrant_collection)
    assert stored[0] == stored[3] == {"only": "this"}
    assert stored[1] == {"kind": "b", "flag": True, "group": {"name": "g"}}
    assert stored[2] == payload(2)
    assert stored[6] == {"n": 6, "kind": "a", "tags": ["even"], "group": {"id": 2, "deep": 1}}


def test_scroll_pages_through_every_point_once(client, qdrant_collection):
    fill(client, qdrant_collection)
    seen, pages, offset = [], [], None
    for _ in range(N):  # bounded: an offset that does not advance must fail, not hang
        points, offset = client.scroll(qdrant_collection, limit=10, offset=offset, with_payload=["n"])
        seen += [p.id for p in points]
        pages.append((len(points), offset))
        if offset is None:
            break
    assert seen == list(range(N))
    assert pages == [(10, 10), (10, 20), (10, 30), (10, 40), (10, 50), (7, None)]
    odd = models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchValue(value="odd"))])
    first, after = client.scroll(qdrant_collection, scroll_filter=odd, limit=4)
    rest, end = client.scroll(qdrant_collection, scroll_filter=odd, limit=100, offset=after)
    assert [p.id for p in first + rest] == list(range(1, N, 2)) and end is None


def test_retrieve_by_ids_and_get_one_point(client, qdrant_collection):
    fill(client, qdrant_collection)
    records = client.retrieve(qdrant_collection, [5, 3, 999], with_vectors=False)
    assert sorted((r.id, r.payload["n"]) for r in records) == [(3, 3), (5, 5)]
    assert all(r.vector is None for r in records)
    one = client.http.points_api.get_point(qdrant_collection, 4).result
    assert (one.id, one.payload) == (4, payload(4))
    assert one.vector == pytest.approx(vector(4), abs=1e-5)
    with pytest.raises(UnexpectedResponse) as missing:
        client.http.points_api.get_point(qdrant_collection, 999)
    assert status_and_error(missing.value) == (404, "Not found: No point with id 999 found")


def test_named_vectors_updated_and_deleted_payload_cleared_queries_batched_as_local_mode(
    client, local, qdrant_collection
):
    for c in (client, local):
        dense = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        c.create_collection(qdrant_collection, vectors_config={"dense": dense})
        points = [models.PointStruct(id=i, vector={"dense": vector(i)}, payload=payload(i)) for i in range(6)]
        c.upsert(qdrant_collection, points, wait=True)
        c.update_vectors(qdrant_collection, [models.PointVectors(id=1, vector={"dense": vector(100)})], wait=True)
        c.delete_vectors(qdrant_collection, ["dense"], models.PointIdsList(points=[2]), wait=True)
        c.clear_payload(qdrant_collection, models.PointIdsList(points=[3]), wait=True)
    records = {r.id: r for r in client.retrieve(qdrant_collection, list(range(6)), with_vectors=True)}
    assert records[1].vector["dense"] == pytest.approx(vector(100), abs=1e-5)
    assert "dense" not in (records[2].vector or {}) and records[3].payload == {}
    assert {i: r.payload for i, r in records.items()} == everything(local, qdrant_collection)
    kind_a = models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value="a"))])
    requests = [
        models.QueryRequest(query=vector(100), using="dense", limit=3),
        models.QueryRequest(query=vector(4), using="dense", filter=kind_a, limit=5),
    ]
    found = [[p.id for p in r.points] for r in client.query_batch_points(qdrant_collection, requests)]
    assert found == [[p.id for p in r.points] for r in local.query_batch_points(qdrant_collection, requests)]
    assert found[0][0] == 1 and 2 not in found[0] and found[1] == [0]  # 3 was of kind a until cleared


def test_batch_update_applies_its_operations_in_order(client, qdrant_collection):
    fill(client, qdrant_collection, n=4)
    results = client.batch_update_points(
        qdrant_collection,
        [
            models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=9, vector=vector(9))])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"kind": "z"}, points=[9, 0])),
            models.DeleteOperation(delete=models.PointIdsList(points=[1])),
        ],
        wait=True,
    )
    assert [r.status for r in results] == [models.UpdateStatus.COMPLETED] * 3
    stored = everything(client, qdrant_collection)
    assert sorted(stored) == [0, 2, 3, 9]
    assert stored[9] == {"kind": "z"} and stored[0]["kind"] == "z" and stored[2]["kind"] == "c"


def test_collections_are_listed_described_and_deleted(client, qdrant_collection):
    assert not client.collection_exists(qdrant_collection)
    fill(client, qdrant_collection, n=5)
    assert client.collection_exists(qdrant_collection)
    assert qdrant_collection in {c.name for c in client.get_collections().collections}
    info = client.get_collection(qdrant_collection)
    assert (info.points_count, info.config.params.vectors.size) == (5, DIM)
    assert info.config.params.vectors.distance == models.Distance.COSINE
    client.create_payload_index(qdrant_collection, "kind", models.PayloadSchemaType.KEYWORD, wait=True)
    assert client.get_collection(qdrant_collection).payload_schema["kind"].data_type == models.PayloadSchemaType.KEYWORD
    client.delete_payload_index(qdrant_collection, "kind", wait=True)
    assert "kind" not in client.get_collection(qdrant_collection).payload_schema
    assert client.delete_collection(qdrant_collection) is True
    assert client.delete_collection(qdrant_collection) is False
    assert not client.collection_exists(qdrant_collection)


# -- errors and limits ----------------------------------------------------------------------------


def test_errors_come_with_qdrants_status_and_words(client, qdrant_url, qdrant_collection):
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    for call in (
        lambda: client.get_collection(missing),
        lambda: client.count(missing),
        lambda: client.upsert(missing, [models.PointStruct(id=1, vector=vector(1))]),
        lambda: client.query_points(missing, query=vector(1)),
    ):
        with pytest.raises(UnexpectedResponse) as raised:
            call()
        assert status_and_error(raised.value) == (404, f"Not found: Collection `{missing}` doesn't exist!")
    fill(client, qdrant_collection, n=3)
    dimension = "Wrong input: Vector dimension error: expected dim: 8, got 3"
    with pytest.raises(UnexpectedResponse) as raised:
        client.upsert(qdrant_collection, [models.PointStruct(id=7, vector=[0.1, 0.2, 0.3])])
    assert status_and_error(raised.value) == (400, dimension)
    with pytest.raises(UnexpectedResponse) as raised:
        client.query_points(qdrant_collection, query=[0.1, 0.2, 0.3])
    assert status_and_error(raised.value) == (400, dimension)
    with pytest.raises(UnexpectedResponse) as raised:
        fill(client, qdrant_collection)
    assert status_and_error(raised.value) == (409, f"Wrong input: Collection `{qdrant_collection}` already exists!")
    malformed = httpx.put(
        f"{qdrant_url}/collections/{qdrant_collection}/points?wait=true", json={"points": [{"idx": 1}]}, timeout=30
    )
    assert malformed.status_code == 400
    assert malformed.json()["status"]["error"].startswith("Format error in JSON body: ")
    assert client.count(qdrant_collection).count == 3
    narrower = QdrantServerIndex(4, url=qdrant_url, collection=qdrant_collection)
    with pytest.raises(ValueError, match=f"collection {qdrant_collection} holds 8-d vectors, not 4-d"):
        narrower.open()
    narrower.close()


def test_a_body_over_the_size_limit_is_refused_as_qdrant_refuses_it():
    small = QdrantServer(max_request_size_mb=1).start()
    try:
        # No version check: it runs in the background and could outlive this short-lived server.
        client = QdrantClient(url=small.url, timeout=30, check_compatibility=False)
        fill(client, "big", n=2)
        text = "x" * (1024 * 1024)
        with pytest.raises(UnexpectedResponse) as raised:
            client.upsert("big", [models.PointStruct(id=5, vector=vector(5), payload={"text": text})])
        status, error = status_and_error(raised.value)
        assert status == 400
        assert error.startswith("Payload error: JSON payload (")
        assert error.endswith(" bytes) is larger than allowed (limit: 1048576 bytes).")
        client.upsert("big", [models.PointStruct(id=6, vector=vector(6), payload={"text": "fits"})])
        assert small.payloads("big")[6] == {"text": "fits"} and small.count("big") == 3
        client.close()
    finally:
        small.stop()


# -- several processes ----------------------------------------------------------------------------

WRITER = """
import json, sys
import numpy as np
from qdrant_client import QdrantClient, models
url, name, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = QdrantClient(url=url, timeout=30)
for start in range(first, first + count, 20):
    ids = range(start, min(start + 20, first + count))
    rows = np.random.default_rng(start).normal(size=(len(ids), 8))
    points = [models.PointStruct(id=i, vector=row.tolist(), payload={"writer": first}) for i, row in zip(ids, rows)]
    client.upsert(name, points, wait=True)
client.delete(name, models.PointIdsList(points=[first]), wait=True)
parent = sorted(p.id for p in client.retrieve(name, [0, 1, 2, 3], with_payload=False))
print(json.dumps({"total": client.count(name).count, "parent": parent}))
"""


def run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, *args], stdout=subprocess.PIPE, text=True)


def test_processes_share_the_server_and_see_each_others_writes(client, qdrant_url, qdrant_collection):
    fill(client, qdrant_collection, n=10)
    writers = [run(qdrant_url, qdrant_collection, str(first), "200") for first in (1000, 2000)]  # at the same time
    for w in writers:
        w.communicate(timeout=120)
    assert [w.returncode for w in writers] == [0, 0]
    for first in (1000, 2000):
        mine = models.Filter(must=[models.FieldCondition(key="writer", match=models.MatchValue(value=first))])
        assert client.count(qdrant_collection, count_filter=mine).count == 199
    assert client.count(qdrant_collection).count == 10 + 199 + 199
    client.delete(qdrant_collection, models.PointIdsList(points=[3, 4]), wait=True)
    reader = run(qdrant_url, qdrant_collection, "3000", "0")  # writes nothing, deletes a point that is not there
    report = json.loads(reader.communicate(timeout=120)[0])
    assert report == {"total": 8 + 199 + 199, "parent": [0, 1, 2]}
