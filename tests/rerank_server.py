"""A local server speaking the reranking wire formats retrieve uses, with their errors and limits:

- `tei`: Hugging Face text-embeddings-inference. `GET /info` -> {model_id, model_type: {reranker}};
  `POST /rerank` {query, texts, truncate, raw_scores} -> [{index, score}] sorted by score; more
  texts than `max_client_batch_size` -> 422 {error, error_type: "Validation"}; an empty query -> 422;
  overloaded -> 429 {error, error_type: "Overloaded"}.
- `cohere`: the Cohere / Jina shape. `POST /v1/rerank` {model, query, documents, top_n} ->
  {id, results: [{index, relevance_score}], meta}; errors {message}.
- `llamacpp`: llama.cpp's server. `GET /props` -> {default_generation_settings, ...}; `POST /v1/rerank`
  the Cohere shape answered {model, object: "list", usage, results}; started without `--reranking`
  -> 501 {error: {code, message, type: "not_supported_error"}}; errors {error: {code, message, type}}.

The score is the share of the query's words a document holds (deterministic), so tests know the
order a real cross-encoder would be asked to produce. `delay` holds every rerank answer back;
`fail_next(status)` answers the next rerank calls with that error; `calls` records the bodies."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORD = re.compile(r"\w+")


def overlap(query: str, document: str) -> float:
    wanted = set(WORD.findall(query.lower()))
    held = set(WORD.findall(document.lower()))
    return round(len(wanted & held) / max(len(wanted), 1), 6)


class RerankServer:
    def __init__(self, api: str = "tei", max_batch: int = 32, reranking: bool = True) -> None:
        self.api, self.max_batch, self.reranking = api, max_batch, reranking
        self.delay = 0.0
        self.failing: list[int] = []
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._reply(*server.get(self.path))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._reply(400, server.error(400, "the body is not JSON"))
                    return
                self._reply(*server.post(self.path, body))

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def start(self) -> "RerankServer":
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def fail_next(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.failing += [status] * times

    def error(self, status: int, message: str):
        if self.api == "tei":
            kinds = {413: "Validation", 422: "Validation", 424: "Backend", 429: "Overloaded"}
            return {"error": message, "error_type": kinds.get(status, "Backend")}
        if self.api == "llamacpp":
            kinds = {400: "invalid_request_error", 501: "not_supported_error"}
            return {"error": {"code": status, "message": message, "type": kinds.get(status, "server_error")}}
        return {"message": message}

    def get(self, path: str):
        if self.api == "tei" and path == "/info":
            return 200, {"model_id": "BAAI/bge-reranker-base", "model_type": {"reranker": {"id2label": {}}}}
        if self.api == "llamacpp" and path == "/props":
            return 200, {"default_generation_settings": {"n_ctx": 512}, "model_path": "bge-reranker-v2-m3.gguf"}
        if self.api == "llamacpp" and path == "/health":
            return 200, {"status": "ok"}
        return 404, self.error(404, f"no route {path}")

    def post(self, path: str, body: dict):
        tei, others = path == "/rerank", path in ("/v1/rerank", "/rerank")
        if not ((self.api == "tei" and tei) or (self.api != "tei" and others)):
            return 404, self.error(404, f"no route {path}")
        with self.lock:
            self.calls.append(body)
            failure = self.failing.pop(0) if self.failing else 0
        if self.delay:
            time.sleep(self.delay)
        if failure:
            return failure, self.error(failure, f"injected failure {failure}")
        if self.api == "llamacpp" and not self.reranking:
            message = "This server does not support reranking. Start it with `--reranking`"
            return 501, self.error(501, message)
        query = body.get("query", "")
        documents = body.get("texts" if self.api == "tei" else "documents")
        if not isinstance(documents, list) or not query:
            return (422 if self.api == "tei" else 400), self.error(422, "query and documents are required")
        if len(documents) > self.max_batch:
            message = f"batch size {len(documents)} > maximum allowed batch size {self.max_batch}"
            return (422 if self.api == "tei" else 400), self.error(422, message)
        scored = sorted(
            ({"index": i, "score": overlap(query, d)} for i, d in enumerate(documents)), key=lambda r: -r["score"]
        )
        if self.api == "tei":
            return 200, scored
        results = [{"index": r["index"], "relevance_score": r["score"]} for r in scored][: body.get("top_n")]
        if self.api == "llamacpp":
            usage = {"prompt_tokens": 10 * len(documents), "total_tokens": 10 * len(documents)}
            return 200, {"model": body.get("model", ""), "object": "list", "usage": usage, "results": results}
        return 200, {"id": "rr-1", "results": results, "meta": {"billed_units": {"search_units": 1}}}
