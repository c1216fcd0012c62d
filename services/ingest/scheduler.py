"""Fair job scheduling across tenants.

Jobs are published to `rag.jobs.<tenant>` on one work-queue stream. Each tenant gets its own
durable pull consumer (filtered on its subject, so consumers never overlap), and free worker
slots take the next job from tenants in round-robin order: a tenant that submits 10,000
documents gets the same share of the workers as one that submits ten.

A consumer nobody fetches from for `idle_seconds` is removed by NATS, so tenants that are gone
leave nothing behind; when such a tenant's jobs come again its consumer is made anew.
"""

import asyncio
import contextlib
import time
from collections import deque

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import ServiceUnavailableError
from prometheus_client import Gauge

from services.common import natsio

SUBJECT_PREFIX = "rag.jobs."
REFRESH_SECONDS = 0.25
FETCH_SECONDS = 0.2
DAY = 86400.0
QUEUE_DEPTH = Gauge("ragmesh_ingest_queue_depth", "Jobs waiting or in flight, per tenant.", ["tenant"])


def consumer_name(tenant: str) -> str:
    return f"ingest-{tenant}"


class FairJobQueue:
    def __init__(self, js: JetStreamContext, ack_wait: float, max_deliver: int, idle_seconds: float = DAY) -> None:
        self.js, self.ack_wait, self.max_deliver, self.idle_seconds = js, ack_wait, max_deliver, idle_seconds
        self.subs: dict[str, JetStreamContext.PullSubscription] = {}
        self.pending: dict[str, int] = {}
        self.order: deque[str] = deque()
        self._lock = asyncio.Lock()
        self._refreshed = 0.0

    async def _subscribe(self, tenant: str) -> None:
        """Bind to the tenant's durable consumer, making it if it does not exist (first job, or
        removed by NATS after `idle_seconds`). The binding it replaces is dropped only once the
        new one stands, so a failure leaves the tenant to be tried again."""
        config = ConsumerConfig(
            durable_name=consumer_name(tenant),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            max_ack_pending=1000,
            inactive_threshold=self.idle_seconds,
        )
        sub = await self.js.pull_subscribe(
            SUBJECT_PREFIX + tenant, durable=consumer_name(tenant), stream=natsio.STREAM_JOBS.name, config=config
        )
        old, self.subs[tenant] = self.subs.get(tenant), sub
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()

    async def _fetch(self, tenant: str):
        try:
            return await self.subs[tenant].fetch(1, timeout=FETCH_SECONDS)
        except ServiceUnavailableError:  # no consumer answers the pull: NATS removed it
            await self._subscribe(tenant)
            return await self.subs[tenant].fetch(1, timeout=FETCH_SECONDS)

    async def refresh(self) -> None:
        """Learn which tenants have jobs waiting (per-subject counts of the stream)."""
        info = await self.js.stream_info(natsio.STREAM_JOBS.name, subjects_filter=SUBJECT_PREFIX + ">")
        counts = info.state.subjects or {}
        for subject, count in counts.items():
            tenant = subject[len(SUBJECT_PREFIX) :]
            if tenant not in self.subs:
                await self._subscribe(tenant)
                self.order.append(tenant)
            self.pending[tenant] = count
        for tenant in self.pending:
            if SUBJECT_PREFIX + tenant not in counts:
                self.pending[tenant] = 0
            QUEUE_DEPTH.labels(tenant).set(self.pending[tenant])
        self._refreshed = time.monotonic()

    async def next(self):
        """The next job message, taking tenants in turn; None when no tenant has one."""
        async with self._lock:
            if time.monotonic() - self._refreshed > REFRESH_SECONDS:
                await self.refresh()
            for _ in range(len(self.order)):
                tenant = self.order[0]
                self.order.rotate(-1)
                if self.pending.get(tenant, 0) <= 0:
                    continue
                try:
                    msgs = await self._fetch(tenant)
                except TimeoutError:
                    # Counted jobs may all be in flight elsewhere (or the consumer was removed
                    # during the fetch: the next fetch makes it again).
                    self.pending[tenant] = 0
                    continue
                self.pending[tenant] -= 1
                return msgs[0]
        return None
