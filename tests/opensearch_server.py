"""A local server speaking the OpenSearch REST protocol for what the lexical adapter uses: index
create/exists/get (with wildcards)/delete, _bulk, _refresh (writes are invisible until then, as in
OpenSearch), _search with bool (filter, must, should + minimum_should_match)/term/terms/multi_match
(BM25 over text fields, each analysed by its mapping's analyser: `whitespace` or `english`), _count,
_delete_by_query and _update_by_query with `ctx._source.X = params.Y` scripts."""

import fnmatch
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import tantivy

ASSIGNMENT = re.compile(r"ctx\._source\.(\w+)\s*=\s*params\.(\w+)")
# English stemming and stop words, like OpenSearch's `english` analyser (Snowball, via Tantivy).
ENGLISH = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.lowercase())
    .filter(tantivy.Filter.stopword("english"))
    .filter(tantivy.Filter.stemmer("english"))
    .build()
)
ANALYZERS = {"english": ENGLISH.analyze, "whitespace": str.split, "standard": lambda t: re.findall(r"\w+", t.lower())}


def analyze(text: str, analyzer: str = "english") -> list[str]:
    return ANALYZERS[analyzer](text)


def source_filter(source: dict, body: dict) -> dict:
    """`"_source": [fields]` in a search body: only those top-level fields come back."""
    wanted = body.get("_source", True)
    if wanted is True:
        return source
    return {k: v for k, v in source.items() if k in wanted}


def field_values(source: dict, path: str) -> list:
    value = source
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def within(value: float, bounds: dict) -> bool:
    return (
        bounds.get("gte", value) <= value <= bounds.get("lte", value)
        and ("gt" not in bounds or value > bounds["gt"])
        and ("lt" not in bounds or value < bounds["lt"])
    )


class Index:
    def __init__(self, mapping: dict) -> None:
        props = mapping.get("mappings", {}).get("properties", {})
        self.mapping = mapping
        self.text_fields = [name for name, spec in props.items() if spec.get("type") == "text"]
        self.analyzers = {name: props[name].get("analyzer", "standard") for name in self.text_fields}
        self.visible: dict[str, dict] = {}
        self.pending: dict[str, dict | None] = {}  # None: deleted

    def refresh(self) -> None:
        for doc_id, source in self.pending.items():
            if source is None:
                self.visible.pop(doc_id, None)
            else:
                self.visible[doc_id] = source
        self.pending.clear()

    def matches(self, source: dict, query: dict) -> bool:
        kind, body = next(iter(query.items()))
        if kind == "match_all":
            return True
        if kind == "term":
            field, value = next(iter(body.items()))
            return value in field_values(source, field)
        if kind == "terms":
            field, values = next(iter(body.items()))
            return any(v in field_values(source, field) for v in values)
        if kind == "range":
            field, bounds = next(iter(body.items()))
            values = [v for v in field_values(source, field) if isinstance(v, int | float)]
            return any(within(v, bounds) for v in values)
        if kind == "bool":
            return all(self.matches(source, q) for q in body.get("filter", [])) and not any(
                self.matches(source, q) for q in body.get("must_not", [])
            )  # must and should clauses are scored (and required) in search()
        if kind == "multi_match":
            return True  # scored in search()
        raise ValueError(f"query {kind} is not supported here")

    def bm25(self, query: str, fields: list[str]) -> dict[str, float]:
        """Summed BM25 (k1 1.2, b 0.75) of each field's terms: multi_match `most_fields`."""
        docs = list(self.visible.items())
        scores: dict[str, float] = {}
        for spec in fields:
            name, _, boost = spec.partition("^")
            boost = float(boost or 1)
            analyzer = self.analyzers.get(name, "standard")
            terms = analyze(query, analyzer)
            tokens = {i: analyze(" ".join(map(str, field_values(s, name))), analyzer) for i, s in docs}
            lengths = {i: len(t) for i, t in tokens.items()}
            # Documents without the field do not count towards its average length.
            with_field = [n for n in lengths.values() if n]
            average = sum(with_field) / max(len(with_field), 1) or 1
            for term in dict.fromkeys(terms):
                having = [i for i, _ in docs if term in tokens[i]]
                idf = math.log(1 + (len(with_field) - len(having) + 0.5) / (len(having) + 0.5))
                for i in having:
                    tf = tokens[i].count(term)
                    norm = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lengths[i] / average))
                    scores[i] = scores.get(i, 0.0) + boost * idf * norm
        return scores


WRITES = ("_bulk", "_update_by_query", "_delete_by_query", "_refresh")


class OpenSearchServer:
    def __init__(self) -> None:
        self.indexes: dict[str, Index] = {}
        self.lock = threading.Lock()
        self.failing, self.failed = 0, 0  # write requests still to fail, and how many did
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict | None) -> None:
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _handle(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                with server.lock:
                    status, body = server.route(self.command, url.path, parse_qs(url.query), raw)
                self._reply(status, body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def start(self) -> "OpenSearchServer":
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.http.shutdown()

    def fail_writes(self, count: int) -> None:
        """The next `count` write requests answer 503 without taking effect, as an overloaded node does."""
        with self.lock:
            self.failing = count

    def route(self, method: str, path: str, query: dict, raw: str) -> tuple[int, dict | None]:
        parts = [p for p in path.split("/") if p]
        if self.failing and parts and parts[-1] in WRITES:
            self.failing -= 1
            self.failed += 1
            error = {"type": "cluster_block_exception", "reason": "injected failure"}
            return 503, {"error": {"root_cause": [error], **error}, "status": 503}
        if not parts:
            return 200, {"name": "fake", "version": {"distribution": "opensearch", "number": "2.19.0"}}
        if parts == ["_bulk"]:
            return 200, self.bulk(raw)
        name, action = parts[0], parts[1] if len(parts) > 1 else ""
        index = self.indexes.get(name)
        if not action and method == "GET":
            found = {
                n: {"mappings": i.mapping.get("mappings", {})}
                for n, i in self.indexes.items()
                if fnmatch.fnmatch(n, name)
            }
            if not found and "*" not in name:
                return 404, {"error": {"type": "index_not_found_exception", "index": name}, "status": 404}
            return 200, found
        if not action:
            if method == "HEAD":
                return (200 if index else 404), None
            if method == "PUT":
                if index:
                    return 400, {"error": {"type": "resource_already_exists_exception"}, "status": 400}
                self.indexes[name] = Index(json.loads(raw or "{}"))
                return 200, {"acknowledged": True, "index": name}
            if method == "DELETE" and (index or query.get("ignore_unavailable") == ["true"]):
                self.indexes.pop(name, None)
                return 200, {"acknowledged": True}
        if index is None:
            return 404, {"error": {"type": "index_not_found_exception", "index": name}, "status": 404}
        body = json.loads(raw or "{}")
        refresh = query.get("refresh", ["false"])[0] in ("true", "")
        if action == "_refresh":
            index.refresh()
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if action == "_count":
            hits = [s for s in index.visible.values() if index.matches(s, body.get("query", {"match_all": {}}))]
            return 200, {"count": len(hits)}
        if action == "_search":
            return 200, self.search(index, body)
        if action in ("_delete_by_query", "_update_by_query"):
            chosen = [i for i, s in index.visible.items() if index.matches(s, body["query"])]
            for doc_id in chosen:
                if action == "_delete_by_query":
                    index.pending[doc_id] = None
                else:
                    source = json.loads(json.dumps(index.visible[doc_id]))
                    params = body["script"]["params"]
                    for field, param in ASSIGNMENT.findall(body["script"]["source"]):
                        source[field] = params[param]
                    index.pending[doc_id] = source
            if refresh:
                index.refresh()
            key = "deleted" if action == "_delete_by_query" else "updated"
            return 200, {key: len(chosen), "failures": []}
        return 400, {"error": {"type": "illegal_argument_exception", "reason": f"{method} {path}"}, "status": 400}

    def bulk(self, raw: str) -> dict:
        lines = [line for line in raw.split("\n") if line.strip()]
        items = []
        for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
            action = json.loads(action_line)["index"]
            index = self.indexes.get(action["_index"])
            if index is None:
                items.append({"index": {"_id": action["_id"], "status": 404, "error": {"type": "index_not_found"}}})
                continue
            index.pending[action["_id"]] = json.loads(source_line)
            items.append({"index": {"_id": action["_id"], "status": 201, "result": "created"}})
        return {"took": 1, "errors": any(i["index"]["status"] >= 300 for i in items), "items": items}

    def search(self, index: Index, body: dict) -> dict:
        query = body.get("query", {"match_all": {}})
        candidates = {i: s for i, s in index.visible.items() if index.matches(s, query)}
        scores = {i: 1.0 for i in candidates}
        clauses = query.get("bool", {})
        for must in clauses.get("must", []):
            spec = must["multi_match"]
            ranked = index.bm25(spec["query"], spec["fields"])
            scores = {i: ranked[i] for i in candidates if i in ranked}
        if clauses.get("should"):
            summed: dict[str, float] = {}
            for should in clauses["should"]:
                spec = should["multi_match"]
                for i, score in index.bm25(spec["query"], spec["fields"]).items():
                    if i in scores:
                        summed[i] = summed.get(i, 0.0) + score
            scores = summed if clauses.get("minimum_should_match", 0) else {i: summed.get(i, 0.0) for i in scores}
        order = sorted(scores, key=lambda i: (-scores[i], i))[: body.get("size", 10)]
        hits = [
            {"_index": "x", "_id": i, "_score": scores[i], "_source": source_filter(index.visible[i], body)}
            for i in order
        ]
        return {
            "took": 1,
            "timed_out": False,
            "hits": {"total": {"value": len(scores), "relation": "eq"}, "hits": hits},
        }
