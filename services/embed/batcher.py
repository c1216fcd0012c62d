"""Micro-batching across concurrent requests, in two lanes.

Requests are split into single texts, queued per lane, and grouped into batches of similar
length bounded by a padded-token budget (the least padding wins; no text waits past a bound).
Each lane has its own worker and its own ONNX session: a query never queues behind bulk work,
nor waits for a running bulk batch to finish; it runs beside it, sharing the cores for a few
milliseconds.
"""

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np
from prometheus_client import Counter, Gauge, Histogram
from tokenizers import Encoding

from services.embed.model import EmbeddingModel

INTERACTIVE, BULK = "interactive", "bulk"

BATCH_SIZE = Histogram(
    "ragmesh_embed_batch_size", "Texts per inference batch.", ["lane"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
BATCH_TOKENS = Histogram(
    "ragmesh_embed_batch_tokens",
    "Padded tokens per inference batch.",
    ["lane"],
    buckets=(64, 256, 512, 1024, 2048, 4096, 8192, 16384),
)
QUEUE_DEPTH = Gauge("ragmesh_embed_queue_depth", "Texts waiting per lane.", ["lane"])
LANE_LATENCY = Histogram(
    "ragmesh_embed_latency_seconds",
    "Embed request latency per lane.",
    ["lane"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE_REQUESTS = Counter("ragmesh_embed_cache_requests_total", "Query-cache lookups.", ["result"])
EMBEDDED_TOKENS = Counter("ragmesh_embed_tokens_total", "Tokens embedded.", ["lane"])
# What a full batch holds: batch fill = padded tokens per batch / this.
TOKEN_BUDGET = Gauge("ragmesh_embed_batch_token_budget", "Padded tokens one inference batch may hold.")


class QueueFull(Exception):
    def __init__(self, lane: str, retry_after_ms: int) -> None:
        super().__init__(f"the {lane} embedding queue is full; retry in {retry_after_ms} ms")
        self.lane = lane
        self.retry_after_ms = retry_after_ms


@dataclass
class _Item:
    encoding: Encoding
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def length(self) -> int:
        return len(self.encoding.ids)


def plan_batch(items: list[_Item], token_budget: int, now: float, patience_s: float) -> list[_Item]:
    """Pick a batch of texts of similar length, as many as fit the padded budget.

    Every run of neighbours in the length-sorted queue is a candidate; the one that wastes the
    least on padding wins, so texts wait a little for partners of their own length instead of
    being padded to a longer neighbour's. A full batch beats a part-full one, unless the whole
    queue fits in one. A text that has waited more than `patience_s` goes in the next batch
    (0: always the oldest), so none waits for partners forever."""
    ordered = sorted(items, key=lambda i: i.length, reverse=True)
    lengths = [i.length for i in ordered]
    totals = [0, *accumulate(lengths)]  # totals[k]: tokens of the k longest
    oldest = min(range(len(ordered)), key=lambda k: ordered[k].enqueued)
    must = oldest if now - ordered[oldest].enqueued >= patience_s else None
    best, best_key = (0, 1), None
    for start, width in enumerate(lengths):
        room = max(1, token_budget // max(width, 1))
        end = min(start + room, len(ordered))
        if must is not None and not start <= must < end:
            continue
        full = end - start == room or end - start == len(ordered)
        key = (full, (totals[end] - totals[start]) / (max(width, 1) * (end - start)))
        if best_key is None or key > best_key:
            best, best_key = (start, end), key
    return ordered[best[0] : best[1]]


class LRUCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def get(self, key: tuple) -> np.ndarray | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: tuple, value: np.ndarray) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.capacity:
            self.data.popitem(last=False)


class Batcher:
    def __init__(
        self,
        model: EmbeddingModel,
        token_budget: int,
        queue_limit: int,
        cache_size: int = 4096,
        bulk_linger_s: float = 0.005,
        bulk_workers: int = 1,
        bulk_patience_s: float = 0.5,
    ):
        self.model = model
        self.token_budget = token_budget
        TOKEN_BUDGET.set(token_budget)
        self.queue_limit = queue_limit
        self.bulk_linger_s = bulk_linger_s
        self.bulk_workers = bulk_workers
        self.bulk_patience_s = bulk_patience_s
        self.lanes: dict[str, list[_Item]] = {INTERACTIVE: [], BULK: []}
        self.cache = LRUCache(cache_size)
        self._wake = {INTERACTIVE: asyncio.Event(), BULK: asyncio.Event()}
        self._tasks: list[asyncio.Task] = []
        self._tokens_per_s = 4000.0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(INTERACTIVE, self.model.session_for(INTERACTIVE)))]
        if self.bulk_workers <= 1:
            self._tasks.append(asyncio.create_task(self._run(BULK, self.model.session)))
            return
        # Bulk batches run side by side, one single-threaded session each: a core taken by another
        # service slows one batch instead of stalling every operator of a shared-thread batch.
        for number in range(self.bulk_workers):
            session = self.model.session_for(f"{BULK}-{number}", threads=1)
            self._tasks.append(asyncio.create_task(self._run(BULK, session)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def embed(self, texts: list[str], lane: str, tenant: str = "") -> tuple[np.ndarray, int]:
        """Vectors for texts (rows in order) and the number of tokens they took. Interactive texts
        are cached per tenant, so a hit tells a tenant only about its own queries; texts of no
        tenant are not cached."""
        started = time.perf_counter()
        keys = [(tenant, self.model.model_id, t) for t in texts] if lane == INTERACTIVE and tenant else []
        cached = [self.cache.get(k) for k in keys] if keys else [None] * len(texts)
        if keys:
            hits = sum(v is not None for v in cached)
            CACHE_REQUESTS.labels("hit").inc(hits)
            CACHE_REQUESTS.labels("miss").inc(len(texts) - hits)
        missing = [i for i, v in enumerate(cached) if v is None]
        if len(self.lanes[lane]) + len(missing) > self.queue_limit:
            backlog = sum(i.length for i in self.lanes[lane])
            raise QueueFull(lane, int(1000 * backlog / self._tokens_per_s) + 50)
        encodings = self.model.tokenize([texts[i] for i in missing]) if missing else []
        loop = asyncio.get_running_loop()
        items = [_Item(e, loop.create_future()) for e in encodings]
        self.lanes[lane].extend(items)
        QUEUE_DEPTH.labels(lane).set(len(self.lanes[lane]))
        self._wake[lane].set()
        vectors = await asyncio.gather(*(i.future for i in items))
        for index, vector in zip(missing, vectors, strict=True):
            cached[index] = vector
            if keys:
                self.cache.put(keys[index], vector)
        LANE_LATENCY.labels(lane).observe(time.perf_counter() - started)
        tokens = sum(len(e.ids) for e in encodings)
        return np.stack(cached) if cached else np.zeros((0, self.model.dimension), np.float32), tokens

    def _padded(self, lane: str) -> int:
        items = self.lanes[lane]
        return len(items) * max((i.length for i in items), default=0)

    async def _run(self, lane: str, session) -> None:
        wake = self._wake[lane]
        while True:
            if not self.lanes[lane]:
                wake.clear()
                await wake.wait()
                continue
            if lane == BULK and self.bulk_linger_s and self._padded(BULK) < self.token_budget:
                # A short wait lets concurrent ingestion requests fill the batch.
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), self.bulk_linger_s)
                except TimeoutError:
                    pass
                if not self.lanes[lane]:  # another bulk worker took them meanwhile
                    continue
            patience = self.bulk_patience_s if lane == BULK else 0.0
            batch = plan_batch(self.lanes[lane], self.token_budget, time.perf_counter(), patience)
            taken = {id(i) for i in batch}
            self.lanes[lane] = [i for i in self.lanes[lane] if id(i) not in taken]
            QUEUE_DEPTH.labels(lane).set(len(self.lanes[lane]))
            width = max(i.length for i in batch)
            BATCH_SIZE.labels(lane).observe(len(batch))
            BATCH_TOKENS.labels(lane).observe(width * len(batch))
            started = time.perf_counter()
            try:
                vectors = await asyncio.to_thread(self.model.embed_encodings, [i.encoding for i in batch], session)
            except Exception as exc:  # a failed batch fails its callers, never the loop
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            elapsed = max(time.perf_counter() - started, 1e-6)
            if lane == BULK:
                rate = width * len(batch) / elapsed * self.bulk_workers  # the lane's, not this worker's
                self._tokens_per_s = 0.8 * self._tokens_per_s + 0.2 * rate
            EMBEDDED_TOKENS.labels(lane).inc(sum(i.length for i in batch))
            for item, vector in zip(batch, vectors, strict=True):
                if not item.future.done():
                    item.future.set_result(vector)
