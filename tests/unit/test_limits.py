"""Governance with an injectable clock: token buckets, per-tenant and per-key limits, concurrency,
budgets and their reset times."""

from datetime import UTC, datetime

import pytest

from rag.v1 import gateway_pb2
from services.gateway.limits import (
    Governor,
    LimitExceeded,
    TenantLimits,
    TokenBucket,
    budget_use,
    check_budgets,
    seconds_to_next_day,
    seconds_to_next_month,
)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=clock)
    assert [bucket.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.try_take() == 0.0
    clock.now += 100
    assert [bucket.try_take() for _ in range(4)][-1] > 0  # never more than the burst


def test_query_limits_per_tenant_and_per_key_and_reset():
    clock = Clock()
    governor = Governor(
        TenantLimits.parse(
            '{"default": {"query_rate": 1, "query_burst": 3, "key_query_rate": 1, "key_query_burst": 2}}'
        ),
        clock,
    )
    governor.check_query("acme", "k1")
    governor.check_query("acme", "k1")
    with pytest.raises(LimitExceeded, match="API key k1 query rate") as error:
        governor.check_query("acme", "k1")
    assert error.value.retry_after_s == pytest.approx(1.0, abs=0.01)
    governor.check_query("acme", "k2")  # another key of the same tenant has its own bucket...
    with pytest.raises(LimitExceeded, match="tenant acme query rate"):
        governor.check_query("acme", "k3")  # ...until the tenant's bucket is empty
    governor.check_query("globex", "k9")  # other tenants are untouched
    clock.now += 2
    governor.check_query("acme", "k1")


def test_ingest_rate_is_separate_from_queries():
    governor = Governor(TenantLimits.parse('{"default": {"ingest_rate": 1, "ingest_burst": 1}}'), Clock())
    governor.check_ingest("acme")
    with pytest.raises(LimitExceeded, match="ingest rate"):
        governor.check_ingest("acme")
    governor.check_query("acme", "k")


def test_concurrency_limit_per_tenant():
    governor = Governor(TenantLimits.parse('{"acme": {"max_concurrent_queries": 2}}'))
    governor.enter("acme")
    governor.enter("acme")
    with pytest.raises(LimitExceeded, match="2 queries in flight"):
        governor.enter("acme")
    governor.enter("globex")
    governor.leave("acme")
    governor.enter("acme")


def test_uploads_in_flight_per_tenant_and_in_all():
    governor = Governor(TenantLimits.parse('{"acme": {"max_concurrent_uploads": 2}}'), uploads_in_flight=3)
    governor.enter_upload("acme")
    governor.enter_upload("acme")
    with pytest.raises(LimitExceeded, match="tenant acme already has 2 uploads in flight"):
        governor.enter_upload("acme")
    governor.enter_upload("globex")
    with pytest.raises(LimitExceeded, match="3 uploads in flight in all"):
        governor.enter_upload("initech")
    governor.leave_upload("acme")
    governor.enter_upload("initech")
    assert governor.uploads == {"acme": 1, "globex": 1, "initech": 1}


def test_limits_parse_overrides_and_rejects_unknown_names():
    limits = TenantLimits.parse('{"default": {"query_rate": 7}, "acme": {"query_burst": 1}}')
    assert limits["acme"].query_rate == 7 and limits["acme"].query_burst == 1
    assert Governor(limits).for_tenant("other").query_rate == 7
    with pytest.raises(ValueError, match="unknown limit names"):
        TenantLimits.parse('{"acme": {"qps": 1}}')


def test_budgets_say_which_and_when_they_reset():
    now = datetime(2026, 11, 22, 18, 0, tzinfo=UTC).timestamp()
    limits = TenantLimits(daily_llm_tokens=1000, monthly_cost_usd=5.0, daily_embedding_tokens=100)
    fresh = gateway_pb2.UsageRecord()
    check_budgets(limits, fresh, fresh, now, "llm")
    with pytest.raises(LimitExceeded, match="daily LLM tokens budget of 1000 is spent") as error:
        check_budgets(limits, gateway_pb2.UsageRecord(llm_tokens=1000), fresh, now, "llm")
    assert error.value.retry_after_s == 6 * 3600
    with pytest.raises(LimitExceeded, match="monthly cost"):
        check_budgets(limits, fresh, gateway_pb2.UsageRecord(cost_usd=5.01), now, "llm")
    with pytest.raises(LimitExceeded, match="embedding tokens"):
        check_budgets(limits, gateway_pb2.UsageRecord(embedding_tokens=100), fresh, now, "embedding")
    check_budgets(TenantLimits(), gateway_pb2.UsageRecord(llm_tokens=10**9), fresh, now, "llm")  # 0 = unlimited


def test_budget_use_is_the_share_spent_of_each_budget_set():
    limits = TenantLimits(daily_llm_tokens=1000, monthly_cost_usd=5.0)
    today = gateway_pb2.UsageRecord(llm_tokens=250, embedding_tokens=10**6)
    month = gateway_pb2.UsageRecord(cost_usd=4.5)
    assert budget_use(limits, today, month) == {"daily_llm_tokens": 0.25, "monthly_cost_usd": 0.9}
    assert budget_use(TenantLimits(), today, month) == {}  # no budget, nothing to be near


def test_reset_times():
    assert seconds_to_next_day(datetime(2026, 11, 22, 23, 0, tzinfo=UTC).timestamp()) == 3600
    assert seconds_to_next_month(datetime(2026, 12, 31, 0, 0, tzinfo=UTC).timestamp()) == 86400
