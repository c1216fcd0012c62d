"""What a request may spend, checked before it runs: rate limits, budgets, concurrency. A spent
limit is RESOURCE_EXHAUSTED naming it, with a `retry-after-ms` hint; a refused request costs nothing."""

import contextlib
import math
import time
from collections.abc import AsyncIterator

import grpc
from prometheus_client import Gauge

from rag.v1 import gateway_pb2
from services.common.refusal import Refused
from services.common.usage import UsageStore
from services.gateway.limits import Governor, LimitExceeded, budget_use, check_budgets

BUDGET_USED = Gauge(
    "ragmesh_budget_used_ratio",
    "Share of a tenant's budget spent in the current UTC day or month (1 = spent), as last checked.",
    ["tenant", "budget"],
)


def refused(exc: LimitExceeded) -> Refused:
    wait_ms = max(1, math.ceil(exc.retry_after_s * 1000))  # never "retry in 0 ms"
    return Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), retry_after_ms=wait_ms)


class Meter:
    def __init__(self, governor: Governor, usage: UsageStore) -> None:
        self.governor, self.usage = governor, usage

    async def _budget(self, tenant: str, kind: str) -> None:
        now = time.time()
        today, month = await self.usage.get(tenant, now)
        limits = self.governor.for_tenant(tenant)
        for budget, used in budget_use(limits, today, month).items():
            BUDGET_USED.labels(tenant, budget).set(used)
        check_budgets(limits, today, month, now, kind)

    async def ingest(self, tenant: str) -> None:
        try:
            self.governor.check_ingest(tenant)
            await self._budget(tenant, "embedding")
        except LimitExceeded as exc:
            raise refused(exc) from None

    @contextlib.asynccontextmanager
    async def query(self, caller: gateway_pb2.ApiKeyRecord, llm: bool) -> AsyncIterator[None]:
        """Around a Search, Ask, Replay or Feedback: the query rates (tenant and key), the LLM budget
        when it may call the LLM, and a slot among the tenant's queries in flight."""
        try:
            if llm:
                await self._budget(caller.tenant, "llm")
            self.governor.check_query(caller.tenant, caller.key_id)
            self.governor.enter(caller.tenant)
        except LimitExceeded as exc:
            raise refused(exc) from None
        try:
            yield
        finally:
            self.governor.leave(caller.tenant)

    @contextlib.asynccontextmanager
    async def upload(self, tenant: str) -> AsyncIterator[None]:
        try:
            self.governor.enter_upload(tenant)
        except LimitExceeded as exc:
            raise refused(exc) from None
        try:
            yield
        finally:
            self.governor.leave_upload(tenant)
