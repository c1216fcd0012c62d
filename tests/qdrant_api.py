"""Qdrant's REST API over qdrant-client's local engine (QdrantLocal): every route parses its body
with the models qdrant-client sends (qdrant_client.http.models), runs the operation on the engine,
so that filters, payload updates and scoring are Qdrant's own, and answers as Qdrant's server does,
errors included."""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, StrictFloat, TypeAdapter, ValidationError
from qdrant_client.http import models
from qdrant_client.local.qdrant_local import QdrantLocal

DEFAULT_LIMIT = 10


class QdrantError(Exception):
    """An error answer: HTTP status and Qdrant's `status.error` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def missing_collection(name: str) -> QdrantError:
    return QdrantError(404, f"Not found: Collection `{name}` doesn't exist!")


class NamedVector(BaseModel, extra="forbid"):
    name: str
    vector: list[StrictFloat]


class SearchRequest(BaseModel, extra="forbid"):
    """POST /points/search: the server still serves it; qdrant-client dropped it (and its model)
    for /points/query."""

    shard_key: models.ShardKeySelector | None = None
    vector: list[StrictFloat] | NamedVector
    filter: models.Filter | None = None
    params: models.SearchParams | None = None
    limit: int
    offset: int | None = None
    with_payload: models.WithPayloadInterface | None = None
    with_vector: models.WithVector | None = None
    score_threshold: float | None = None


def parse_body(raw: bytes, body_type: Any) -> Any:
    """A JSON body as the model qdrant-client builds it; a malformed one is refused as Qdrant
    refuses what serde cannot deserialise."""
    try:
        return TypeAdapter(body_type).validate_json(raw or b"")
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3]]
        raise QdrantError(400, f"Format error in JSON body: {'; '.join(problems)}") from None


def or_default(value: Any, default: Any) -> Any:
    """A field the request left out takes the server's default (which differs between endpoints)."""
    return default if value is None else value


def point_id(text: str) -> models.ExtendedPointId:
    return int(text) if text.isdigit() else text


def engine_error(exc: ValueError | KeyError) -> QdrantError:
    """The engine's refusal in the words and status of Qdrant's server."""
    if isinstance(exc, KeyError):  # a point the selector names is not in the collection
        return QdrantError(404, f"Not found: No point with id {exc.args[0]} found")
    message = str(exc)
    other = re.fullmatch(r"Collection (.+) not found", message)  # one a request names besides its own
    if other:
        return missing_collection(other.group(1))
    limit = re.fullmatch(r"(limit|offset) value (-?\d+) is invalid\. Must be (\d+) or larger\.", message)
    if limit:
        field, value, least = limit.groups()
        return QdrantError(
            422, f"Validation error in JSON body: [{field}: value {value} invalid, must be {least} or larger]"
        )
    # The server names no vector when the collection has a single unnamed one.
    message = message.removesuffix(" for vector ''")
    return QdrantError(400, message if message.startswith("Wrong input: ") else f"Wrong input: {message}")


def scored_text_index(schema: models.PayloadFieldSchema | None) -> bool:
    """The one kind of payload index that changes results in the local engine (text scoring);
    the others only make a server faster, so the engine is not told about them."""
    return isinstance(schema, models.TextIndexParams) and bool(schema.scoring)


def index_info(schema: models.PayloadFieldSchema, points: int) -> models.PayloadIndexInfo:
    if isinstance(schema, models.PayloadSchemaType):
        return models.PayloadIndexInfo(data_type=schema, points=points)
    return models.PayloadIndexInfo(data_type=models.PayloadSchemaType(schema.type.value), params=schema, points=points)


def selector(body: models.SetPayload | models.DeletePayload | models.DeleteVectors):
    if body.points is not None:
        return models.PointIdsList(points=body.points)
    if body.filter is not None:
        return models.FilterSelector(filter=body.filter)
    raise QdrantError(400, "Format error in JSON body: Either list of point ids or filter must be provided")


def jsonable(value: Any) -> Any:
    """A result as Qdrant writes it: fields without a value are left out, payload values never."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Route:
    method: str
    segments: tuple[str, ...]  # "{x}" is a path parameter
    operation: Callable[..., Any]  # (api, path parameters, body, query) -> result
    body: Any = None  # the type the JSON body is parsed into; None: no body
    write: bool = False  # changes state (the writes fault injection fails)
    enveloped: bool = True  # the result inside {"result", "status", "time"}

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if method != self.method or len(parts) != len(self.segments):
            return None
        params = {}
        for segment, part in zip(self.segments, parts, strict=True):
            if segment.startswith("{"):
                params[segment[1:-1]] = part
            elif segment != part:
                return None
        return params


class QdrantApi:
    """The engine behind the REST routes; not thread-safe: the server serialises calls."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.engine = QdrantLocal(":memory:")
        self.indexes: dict[str, dict[str, models.PayloadFieldSchema]] = {}  # collection -> field -> schema
        self.operations = 0

    def close(self) -> None:
        self.engine.close()

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        parts = [unquote(p) for p in path.split("/") if p]
        for route in ROUTES:
            params = route.match(method, parts)
            if params is not None:
                return route, params
        return None

    def call(self, route: Route, params: dict[str, str], raw: bytes, query: dict[str, str]) -> tuple[int, dict]:
        started = time.perf_counter()
        try:
            body = parse_body(raw, route.body) if route.body is not None else None
            name = params.get("name")
            if name is not None and route.operation not in UNCHECKED and not self.engine.collection_exists(name):
                raise missing_collection(name)
            try:
                result = route.operation(self, params, body, query)
            except (ValueError, KeyError) as exc:
                raise engine_error(exc) from exc
        except QdrantError as exc:
            return exc.status, {"status": {"error": exc.message}, "time": time.perf_counter() - started}
        except Exception as exc:  # anything else is the server's own failure, answered as Qdrant answers one
            message = f"Service internal error: {type(exc).__name__}: {exc}"
            return 500, {"status": {"error": message}, "time": time.perf_counter() - started}
        if not route.enveloped:
            return 200, jsonable(result)
        return 200, {"result": jsonable(result), "status": "ok", "time": time.perf_counter() - started}

    def updated(self, query: dict[str, str]) -> models.UpdateResult:
        self.operations += 1
        waited = query.get("wait", "false") == "true"
        status = models.UpdateStatus.COMPLETED if waited else models.UpdateStatus.ACKNOWLEDGED
        return models.UpdateResult(operation_id=self.operations, status=status)

    # -- service and collections ----------------------------------------------------------------

    def root(self, params, body, query):
        return {"title": "qdrant - vector search engine", "version": self.version}

    def list_collections(self, params, body, query):
        return self.engine.get_collections()

    def create_collection(self, params, body: models.CreateCollection, query):
        name = params["name"]
        if self.engine.collection_exists(name):
            raise QdrantError(409, f"Wrong input: Collection `{name}` already exists!")
        self.engine.create_collection(
            name, vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors, metadata=body.metadata
        )
        self.indexes[name] = {}
        return True

    def get_collection(self, params, body, query):
        name = params["name"]
        info = self.engine.get_collection(name)
        info.payload_schema = {
            field: index_info(schema, self.points_with(name, field)) for field, schema in self.indexes[name].items()
        }
        return info

    def points_with(self, name: str, field: str) -> int:
        empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=field))
        return self.engine.count(name, models.Filter(must_not=[empty])).count

    def collection_exists(self, params, body, query):
        return models.CollectionExistence(exists=self.engine.collection_exists(params["name"]))

    def delete_collection(self, params, body, query):
        self.indexes.pop(params["name"], None)
        return self.engine.delete_collection(params["name"])

    def create_index(self, params, body: models.CreateFieldIndex, query):
        name, field = params["name"], body.field_name
        previous = self.indexes[name].get(field)
        if body.field_schema is not None:
            self.indexes[name][field] = body.field_schema
        if scored_text_index(body.field_schema) or scored_text_index(previous):
            self.engine.create_payload_index(name, field, body.field_schema)
        return self.updated(query)

    def delete_index(self, params, body, query):
        name, field = params["name"], params["field"]
        if scored_text_index(self.indexes[name].pop(field, None)):
            self.engine.delete_payload_index(name, field)
        return self.updated(query)

    # -- points -----------------------------------------------------------------------------------

    def upsert(self, params, body: models.PointInsertOperations, query):
        points = body.points if isinstance(body, models.PointsList) else body.batch
        self.engine.upsert(params["name"], points, update_filter=body.update_filter, update_mode=body.update_mode)
        return self.updated(query)

    def retrieve(self, params, body: models.PointRequest, query):
        with_payload, with_vectors = or_default(body.with_payload, True), or_default(body.with_vector, False)
        return self.engine.retrieve(params["name"], body.ids, with_payload, with_vectors)

    def get_point(self, params, body, query):
        found = self.engine.retrieve(params["name"], [point_id(params["id"])], True, True)
        if not found:
            raise QdrantError(404, f"Not found: No point with id {params['id']} found")
        return found[0]

    def delete_points(self, params, body: models.PointsSelector, query):
        self.engine.delete(params["name"], body)
        return self.updated(query)

    def set_payload(self, params, body: models.SetPayload, query):
        self.engine.set_payload(params["name"], body.payload, selector(body), key=body.key)
        return self.updated(query)

    def overwrite_payload(self, params, body: models.SetPayload, query):
        self.engine.overwrite_payload(params["name"], body.payload, selector(body))
        return self.updated(query)

    def delete_payload(self, params, body: models.DeletePayload, query):
        self.engine.delete_payload(params["name"], body.keys, selector(body))
        return self.updated(query)

    def clear_payload(self, params, body: models.PointsSelector, query):
        self.engine.clear_payload(params["name"], body)
        return self.updated(query)

    def update_vectors(self, params, body: models.UpdateVectors, query):
        self.engine.update_vectors(params["name"], body.points, update_filter=body.update_filter)
        return self.updated(query)

    def delete_vectors(self, params, body: models.DeleteVectors, query):
        self.engine.delete_vectors(params["name"], body.vector, selector(body))
        return self.updated(query)

    def batch(self, params, body: models.UpdateOperations, query):
        self.engine.batch_update_points(params["name"], body.operations)
        return [self.updated(query) for _ in body.operations]

    def count(self, params, body: models.CountRequest, query):
        return self.engine.count(params["name"], body.filter)

    def scroll(self, params, body: models.ScrollRequest, query):
        points, next_offset = self.engine.scroll(
            params["name"],
            scroll_filter=body.filter,
            limit=DEFAULT_LIMIT if body.limit is None else body.limit,
            order_by=body.order_by,
            offset=body.offset,
            with_payload=or_default(body.with_payload, True),
            with_vectors=or_default(body.with_vector, False),
        )
        return {"points": jsonable(points), "next_page_offset": next_offset}

    def query(self, params, body: models.QueryRequest, query=None):
        self.check_dimension(params["name"], body.using, body.query)
        return self.engine.query_points(
            params["name"],
            query=body.query,
            using=body.using,
            prefetch=body.prefetch,
            query_filter=body.filter,
            search_params=body.params,
            limit=DEFAULT_LIMIT if body.limit is None else body.limit,
            offset=body.offset,
            with_payload=or_default(body.with_payload, False),
            with_vectors=or_default(body.with_vector, False),
            score_threshold=body.score_threshold,
            lookup_from=body.lookup_from,
        )

    def check_dimension(self, name: str, using: str | None, query: models.QueryInterface | None) -> None:
        """A query vector of the wrong size, refused in the server's words before the engine's
        arithmetic fails on it."""
        vector = query.nearest if isinstance(query, models.NearestQuery) else query
        if not (isinstance(vector, list) and vector and isinstance(vector[0], float)):
            return
        vectors = self.engine.get_collection(name).config.params.vectors
        expected = vectors.get(using or "") if isinstance(vectors, dict) else vectors
        if expected is not None and len(vector) != expected.size:
            raise QdrantError(
                400, f"Wrong input: Vector dimension error: expected dim: {expected.size}, got {len(vector)}"
            )

    def query_batch(self, params, body: models.QueryRequestBatch, query):
        return [self.query(params, request) for request in body.searches]

    def search(self, params, body: SearchRequest, query):
        named = isinstance(body.vector, NamedVector)
        request = models.QueryRequest(
            query=body.vector.vector if named else body.vector,
            using=body.vector.name if named else None,
            filter=body.filter,
            params=body.params,
            limit=body.limit,
            offset=body.offset,
            with_payload=body.with_payload,
            with_vector=body.with_vector,
            score_threshold=body.score_threshold,
        )
        return self.query(params, request).points


# Operations that answer for a collection that does not exist themselves.
UNCHECKED = (QdrantApi.create_collection, QdrantApi.collection_exists, QdrantApi.delete_collection)

C, P = ("collections", "{name}"), ("collections", "{name}", "points")
ROUTES = (
    Route("GET", (), QdrantApi.root, enveloped=False),
    Route("GET", ("collections",), QdrantApi.list_collections),
    Route("PUT", C, QdrantApi.create_collection, models.CreateCollection, write=True),
    Route("GET", C, QdrantApi.get_collection),
    Route("DELETE", C, QdrantApi.delete_collection, write=True),
    Route("GET", (*C, "exists"), QdrantApi.collection_exists),
    Route("PUT", (*C, "index"), QdrantApi.create_index, models.CreateFieldIndex, write=True),
    Route("DELETE", (*C, "index", "{field}"), QdrantApi.delete_index, write=True),
    Route("PUT", P, QdrantApi.upsert, models.PointInsertOperations, write=True),
    Route("POST", P, QdrantApi.retrieve, models.PointRequest),
    Route("POST", (*P, "delete"), QdrantApi.delete_points, models.PointsSelector, write=True),
    Route("POST", (*P, "payload"), QdrantApi.set_payload, models.SetPayload, write=True),
    Route("PUT", (*P, "payload"), QdrantApi.overwrite_payload, models.SetPayload, write=True),
    Route("POST", (*P, "payload", "delete"), QdrantApi.delete_payload, models.DeletePayload, write=True),
    Route("POST", (*P, "payload", "clear"), QdrantApi.clear_payload, models.PointsSelector, write=True),
    Route("PUT", (*P, "vectors"), QdrantApi.update_vectors, models.UpdateVectors, write=True),
    Route("POST", (*P, "vectors", "delete"), QdrantApi.delete_vectors, models.DeleteVectors, write=True),
    Route("POST", (*P, "batch"), QdrantApi.batch, models.UpdateOperations, write=True),
    Route("POST", (*P, "count"), QdrantApi.count, models.CountRequest),
    Route("POST", (*P, "scroll"), QdrantApi.scroll, models.ScrollRequest),
    Route("POST", (*P, "query"), QdrantApi.query, models.QueryRequest),
    Route("POST", (*P, "query", "batch"), QdrantApi.query_batch, models.QueryRequestBatch),
    Route("POST", (*P, "search"), QdrantApi.search, SearchRequest),
    Route("GET", (*P, "{id}"), QdrantApi.get_point),
)
