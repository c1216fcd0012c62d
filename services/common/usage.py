"""Per-tenant usage per UTC day and month, kept in NATS KV so every gateway replica and restart
sees the same totals. Increments are compare-and-set, so concurrent writers lose nothing."""

from datetime import UTC, datetime

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import gateway_pb2


def day_key(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def month_key(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


class UsageStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def _get(self, key: str) -> tuple[gateway_pb2.UsageRecord | None, int]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, 0
        return gateway_pb2.UsageRecord.FromString(entry.value), entry.revision

    async def add(self, tenant: str, now: float, **deltas) -> None:
        """Add to today's and this month's record, e.g. add("acme", time.time(), queries=1, llm_tokens=120)."""
        for period in (day_key(now), month_key(now)):
            key = f"{tenant}.{period}"
            while True:
                record, revision = await self._get(key)
                record = record or gateway_pb2.UsageRecord(tenant=tenant, period=period)
                for name, value in deltas.items():
                    setattr(record, name, getattr(record, name) + value)
                try:
                    if revision:
                        await self.kv.update(key, record.SerializeToString(), last=revision)
                    else:
                        await self.kv.create(key, record.SerializeToString())
                    break
                except KeyWrongLastSequenceError:
                    continue

    async def get(self, tenant: str, now: float) -> tuple[gateway_pb2.UsageRecord, gateway_pb2.UsageRecord]:
        day, month = day_key(now), month_key(now)
        today = (await self._get(f"{tenant}.{day}"))[0] or gateway_pb2.UsageRecord(tenant=tenant, period=day)
        this_month = (await self._get(f"{tenant}.{month}"))[0] or gateway_pb2.UsageRecord(tenant=tenant, period=month)
        return today, this_month
