"""A local server speaking Qdrant's REST protocol (what `QdrantClient(url=...)` sends) over
qdrant-client's own engine, for tests: several processes share it as they would a Qdrant server.
Requests bigger than `max_request_size_mb` are refused as Qdrant refuses them; writes can be made
to fail on demand; collections and points can be inspected from the test."""

import importlib.metadata
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

from qdrant_api import QdrantApi
from qdrant_client.http import models

MB = 1024 * 1024
# What Qdrant answers when it cannot take a write (a shard unavailable, an internal failure).
FAILURES = {
    500: "Service internal error: injected failure",
    503: "Shard temporarily unavailable: injected failure",
}


@dataclass
class WriteFaults:
    remaining: int = 0  # how many of the next write requests fail
    status: int = 503
    applied: bool = False  # the write takes effect, and then the answer is an error
    failed: int = 0  # write requests failed since these faults were set


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # several client processes connecting at once are not turned away


def error_body(message: str) -> dict:
    return {"status": {"error": message}, "time": 0.0}


class QdrantServer:
    def __init__(self, max_request_size_mb: int = 32) -> None:
        self.max_request_bytes = max_request_size_mb * MB
        self.api = QdrantApi(version=importlib.metadata.version("qdrant-client"))
        self.lock = threading.Lock()
        self.faults = WriteFaults()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
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
                self.wfile.write(payload)

            def _discard(self, length: int) -> None:
                while length > 0 and (chunk := self.rfile.read(min(MB, length))):
                    length -= len(chunk)

            def _handle(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > server.max_request_bytes:
                    self._discard(length)  # so that the client, done sending, reads the answer
                    self._reply(*server.too_large(length))
                    return
                raw = self.rfile.read(length) if length else b""
                self._reply(*server.handle(self.command, url.path, dict(parse_qsl(url.query)), raw))

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def start(self) -> "QdrantServer":
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        with self.lock:
            self.api.close()

    def too_large(self, length: int) -> tuple[int, dict]:
        """Qdrant's JSON extractor refuses the body before reading it, as a bad request (not 413)."""
        limit = self.max_request_bytes
        return 400, error_body(
            f"Payload error: JSON payload ({length} bytes) is larger than allowed (limit: {limit} bytes)."
        )

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, dict | None]:
        with self.lock:
            self.requests.append((method, path))
            found = self.api.find(method, path)
            if found is None:
                return 404, None  # as actix answers a path no route takes
            route, params = found
            if not (route.write and self.faults.remaining):
                return self.api.call(route, params, raw, query)
            self.faults.remaining -= 1
            self.faults.failed += 1
            if self.faults.applied:
                self.api.call(route, params, raw, query)
            status = self.faults.status
            return status, error_body(FAILURES.get(status, f"injected failure {status}"))

    # -- for tests ------------------------------------------------------------------------------

    def fail_writes(self, count: int, status: int = 503, applied: bool = False) -> None:
        """The next `count` write requests (collections, indexes, points, payloads) answer `status`;
        with `applied` the write takes effect first, as when a reply is lost after the commit."""
        with self.lock:
            self.faults = WriteFaults(remaining=count, status=status, applied=applied)

    def collection_names(self) -> list[str]:
        with self.lock:
            return sorted(c.name for c in self.api.engine.get_collections().collections)

    def count(self, collection: str, where: models.Filter | None = None) -> int:
        with self.lock:
            return self.api.engine.count(collection, where).count

    def payloads(self, collection: str) -> dict:
        """Every point's payload by point id."""
        with self.lock:
            total = self.api.engine.count(collection).count
            points, _ = self.api.engine.scroll(collection, limit=max(total, 1), with_payload=True)
        return {p.id: p.payload for p in points}

    def payload_indexes(self, collection: str) -> dict[str, models.PayloadFieldSchema]:
        with self.lock:
            return dict(self.api.indexes[collection])
