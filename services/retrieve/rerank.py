"""The optional reranking stage: an external cross-encoder service reorders the best fused hits.

Three wire formats:
- `tei`: Hugging Face text-embeddings-inference, `POST /rerank` {query, texts, truncate} ->
  [{index, score}];
- `cohere`: the Cohere / Jina shape, `POST /v1/rerank` {model, query, documents, top_n} ->
  {results: [{index, relevance_score}]};
- `llamacpp`: llama.cpp's server started with `--reranking`, `POST /v1/rerank`, the same shape as
  Cohere's, its errors as {error: {code, message, type}}.
`auto` probes once: TEI answers `GET /info` with its model type, llama.cpp `GET /props`; anything
else is taken to speak the Cohere shape.

Bounded: one call per query over at most `top_n` hits, within a latency budget. A timeout, an
HTTP error, a malformed answer or a refused connection never fails a search: the caller keeps the
fused order and reports why (RerankReport)."""

import asyncio
import time
from dataclasses import dataclass

import httpx

MAX_DOCUMENT_CHARS = 4000  # what one passage may send; TEI truncates to the model's length itself
APIS = ("tei", "cohere", "llamacpp")


class RerankError(Exception):
    """The service did not rerank: the reason, readable, for the report."""


@dataclass(frozen=True)
class Reranked:
    scores: list[float]  # one per document sent, in the order sent
    api: str
    model: str


def _error_text(response: httpx.Response) -> str:
    """The service's own words: TEI {error}, Cohere {message}, llama.cpp {error: {message}}."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error", body.get("message", body.get("detail", "")))
        if isinstance(error, dict):
            error = error.get("message", "")
        return str(error)[:200]
    return str(body)[:200]


def parse_scores(api: str, body, count: int) -> list[float]:
    """Scores in the order the documents were sent, from either answer shape."""
    rows = body if api == "tei" else (body or {}).get("results") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise RerankError(f"the {api} reranker answered without results")
    key = "score" if api == "tei" else "relevance_score"
    scores: list[float | None] = [None] * count
    for row in rows:
        try:
            index, score = int(row["index"]), float(row[key])
        except (KeyError, TypeError, ValueError) as exc:
            raise RerankError(f"the {api} reranker answered a malformed result: {str(row)[:80]}") from exc
        if not 0 <= index < count:
            raise RerankError(f"the {api} reranker answered index {index} for {count} documents")
        scores[index] = score
    missing = [i for i, s in enumerate(scores) if s is None]
    if missing:
        raise RerankError(f"the {api} reranker left {len(missing)} of {count} documents unscored")
    return scores


class Reranker:
    def __init__(
        self, url: str, api: str = "auto", model: str = "", api_key: str = "", top_n: int = 20, timeout_ms: float = 300
    ) -> None:
        self.url = url.rstrip("/")
        self.api = "" if api == "auto" else api
        self.model, self.top_n, self.budget = model, top_n, timeout_ms / 1000
        self._named = bool(model)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30.0))

    async def close(self) -> None:
        await self.client.aclose()

    async def _probe(self, path: str, marker: str) -> dict | None:
        try:
            response = await self.client.get(self.url + path)
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return body if isinstance(body, dict) and marker in body else None

    async def _detect(self) -> str:
        if await self._probe("/info", "model_type") is not None:
            return "tei"
        if await self._probe("/props", "default_generation_settings") is not None:
            return "llamacpp"
        return "cohere"

    async def _name_model(self) -> None:
        """TEI serves one model and says which at /info: reported with every rerank."""
        self._named = True
        info = await self._probe("/info", "model_type")
        if info is not None:
            self.model = str(info.get("model_id", ""))

    def _request(self, api: str, query: str, documents: list[str]) -> tuple[str, dict]:
        if api == "tei":
            return "/rerank", {"query": query, "texts": documents, "truncate": True, "raw_scores": False}
        body = {"query": query, "documents": documents, "top_n": len(documents)}
        if self.model:
            body["model"] = self.model
        return ("/v1/rerank" if not self.url.endswith("/v1") else "/rerank"), body

    async def _call(self, query: str, documents: list[str]) -> Reranked:
        if not self.api:
            self.api = await self._detect()
        api = self.api
        if api == "tei" and not self.model and not self._named:
            await self._name_model()
        path, body = self._request(api, query, [d[:MAX_DOCUMENT_CHARS] for d in documents])
        try:
            response = await self.client.post(self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise RerankError(f"the reranker at {self.url} could not be reached: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise RerankError(f"the {api} reranker answered HTTP {response.status_code}: {_error_text(response)}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise RerankError(f"the {api} reranker answered something other than JSON") from exc
        return Reranked(parse_scores(api, payload, len(documents)), api, self.model)

    async def rerank(self, query: str, documents: list[str], budget_s: float | None = None) -> Reranked:
        """Scores for `documents` (at most top_n of them), or RerankError / TimeoutError."""
        budget = min(self.budget, budget_s) if budget_s is not None else self.budget
        if budget <= 0:
            raise TimeoutError
        return await asyncio.wait_for(self._call(query, documents), budget)


def rerank_order(scores: list[float]) -> list[int]:
    """Positions by rerank score, best first; ties keep the fused order."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
