"""Per-tenant and per-key governance: token-bucket rate limits, concurrency limits, budgets.

Pure and clock-injectable: the gateway passes time.monotonic / time.time, tests pass a fake clock.
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

Clock = Callable[[], float]


class LimitExceeded(Exception):
    """Which limit, and when it resets: the caller maps it to RESOURCE_EXHAUSTED with a retry hint."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(0.0, retry_after_s)


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    burst: float  # bucket size
    clock: Clock = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens, self.updated = self.burst, self.clock()

    def wait(self, n: float = 1.0) -> float:
        """Seconds until n tokens are there (0.0: now), taking nothing."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= n:
            return 0.0
        return (n - self.tokens) / self.rate if self.rate > 0 else math.inf

    def try_take(self, n: float = 1.0) -> float:
        """Take n tokens; 0.0 when granted, else the seconds until they would be there."""
        wait = self.wait(n)
        if not wait:
            self.tokens -= n
        return wait


@dataclass(frozen=True)
class TenantLimits:
    """Limits of one tenant; 0 means unlimited."""

    query_rate: float = 20.0  # Search + Ask per second, per tenant
    query_burst: float = 40.0
    key_query_rate: float = 10.0  # per API key
    key_query_burst: float = 20.0
    ingest_rate: float = 50.0  # documents per second, per tenant
    ingest_burst: float = 200.0
    max_concurrent_queries: int = 4  # in flight per tenant: one tenant's burst cannot starve others
    max_concurrent_uploads: int = 4  # uploads streaming through a gateway at once, per tenant
    daily_llm_tokens: int = 0
    monthly_cost_usd: float = 0.0
    daily_embedding_tokens: int = 0  # ingestion

    @classmethod
    def parse(cls, text: str) -> dict[str, "TenantLimits"]:
        """`{"default": {...}, "acme": {"query_rate": 5}}`: per-tenant overrides over the default."""
        raw = json.loads(text) if text.strip() else {}
        known = {f.name for f in fields(cls)}
        base = {k: v for k, v in raw.get("default", {}).items() if k in known}
        unknown = {k for entry in raw.values() for k in entry if k not in known}
        if unknown:
            raise ValueError(f"unknown limit names: {sorted(unknown)}; known: {sorted(known)}")
        return {tenant: cls(**{**base, **entry}) for tenant, entry in raw.items()} | {"default": cls(**base)}


def seconds_to_next_day(now: float) -> float:
    return 86400 - now % 86400


def seconds_to_next_month(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return following.timestamp() - now


class Governor:
    """Rate limits and concurrency, per tenant and per key, held in this gateway's memory."""

    def __init__(
        self, limits: dict[str, TenantLimits], clock: Clock = time.monotonic, uploads_in_flight: int = 0
    ) -> None:
        self.limits, self.clock = limits, clock
        self.buckets: dict[tuple, TokenBucket] = {}
        self.in_flight: dict[str, int] = {}
        self.uploads: dict[str, int] = {}
        self.uploads_in_flight = uploads_in_flight  # in all tenants; 0 = unlimited

    def for_tenant(self, tenant: str) -> TenantLimits:
        return self.limits.get(tenant) or self.limits["default"]

    def _bucket(self, key: tuple, rate: float, burst: float) -> TokenBucket:
        if key not in self.buckets:
            self.buckets[key] = TokenBucket(rate, max(burst, 1.0), self.clock)
        return self.buckets[key]

    def check_query(self, tenant: str, key_id: str) -> None:
        lim = self.for_tenant(tenant)
        checks = [
            (("query", tenant), lim.query_rate, lim.query_burst, f"tenant {tenant} query rate ({lim.query_rate}/s)"),
            (
                ("query-key", key_id),
                lim.key_query_rate,
                lim.key_query_burst,
                f"API key {key_id} query rate ({lim.key_query_rate}/s)",
            ),
        ]
        self._take(checks)

    def check_ingest(self, tenant: str) -> None:
        lim = self.for_tenant(tenant)
        self._take(
            [
                (
                    ("ingest", tenant),
                    lim.ingest_rate,
                    lim.ingest_burst,
                    f"tenant {tenant} ingest rate ({lim.ingest_rate} documents/s)",
                )
            ]
        )

    def _take(self, checks) -> None:
        """All buckets must allow the request before any is charged: a refused request costs nothing."""
        buckets = [(self._bucket(key, rate, burst), label) for key, rate, burst, label in checks if rate > 0]
        for bucket, label in buckets:
            wait = bucket.wait()
            if wait:
                raise LimitExceeded(f"{label} exceeded; retry in {max(wait, 0.001) * 1000:.0f} ms", wait)
        for bucket, _ in buckets:
            bucket.try_take()

    def enter(self, tenant: str) -> None:
        limit = self.for_tenant(tenant).max_concurrent_queries
        if limit and self.in_flight.get(tenant, 0) >= limit:
            raise LimitExceeded(
                f"tenant {tenant} already has {limit} queries in flight (the limit); retry shortly", 0.1
            )
        self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1

    def leave(self, tenant: str) -> None:
        self.in_flight[tenant] = max(0, self.in_flight.get(tenant, 0) - 1)

    def enter_upload(self, tenant: str) -> None:
        """An upload holds at most one piece in memory at a time: bounding uploads bounds memory."""
        limit = self.for_tenant(tenant).max_concurrent_uploads
        if limit and self.uploads.get(tenant, 0) >= limit:
            raise LimitExceeded(
                f"tenant {tenant} already has {limit} uploads in flight (the limit); retry shortly", 0.1
            )
        if self.uploads_in_flight and sum(self.uploads.values()) >= self.uploads_in_flight:
            raise LimitExceeded(
                f"this gateway has {self.uploads_in_flight} uploads in flight in all; retry shortly", 0.1
            )
        self.uploads[tenant] = self.uploads.get(tenant, 0) + 1

    def leave_upload(self, tenant: str) -> None:
        self.uploads[tenant] = max(0, self.uploads.get(tenant, 0) - 1)


def budget_use(limits: TenantLimits, today, this_month) -> dict[str, float]:
    """Share of each budget the tenant has spent (1.0 = spent), for the budgets it has (0 = none)."""
    budgets = {
        "daily_llm_tokens": (limits.daily_llm_tokens, today.llm_tokens),
        "monthly_cost_usd": (limits.monthly_cost_usd, this_month.cost_usd),
        "daily_embedding_tokens": (limits.daily_embedding_tokens, today.embedding_tokens),
    }
    return {name: used / budget for name, (budget, used) in budgets.items() if budget}


def check_budgets(limits: TenantLimits, today, this_month, now: float, kind: str) -> None:
    """Refuse new work once a budget of the current UTC day or month is spent (records: UsageRecord)."""
    checks = {
        "llm": [
            (limits.daily_llm_tokens, today.llm_tokens, "daily LLM tokens", seconds_to_next_day(now)),
            (limits.monthly_cost_usd, this_month.cost_usd, "monthly cost (USD)", seconds_to_next_month(now)),
        ],
        "embedding": [
            (
                limits.daily_embedding_tokens,
                today.embedding_tokens,
                "daily ingestion embedding tokens",
                seconds_to_next_day(now),
            ),
        ],
    }[kind]
    for budget, used, label, reset_s in checks:
        if budget and used >= budget:
            raise LimitExceeded(
                f"the {label} budget of {budget:g} is spent ({used:g} used); it resets in {reset_s / 3600:.1f} h (UTC)",
                reset_s,
            )
