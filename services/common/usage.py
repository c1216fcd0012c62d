"""Per-tenant usage per UTC day and month, kept in NATS KV so every gateway replica and restart
sees the same totals.

Usage is counted in memory and added to the shared records every `flush_seconds` by
compare-and-set, so concurrent writers lose nothing and a request costs no KV round trip (four
of them, with an fsync each, was most of a search's cost in NATS). Reads return the shared record
(read at most `flush_seconds` ago) plus what this process has counted and not yet written, so a
process always sees its own usage at once and other replicas' within about two flush intervals.
A process that is killed loses at most its last interval of counts; each answer's usage is also
in its audit event.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import gateway_pb2

log = logging.getLogger(__name__)


def day_key(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def month_key(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def added(record: gateway_pb2.UsageRecord, deltas: gateway_pb2.UsageRecord) -> gateway_pb2.UsageRecord:
    """A new record: `record` with every counter of `deltas` added."""
    total = gateway_pb2.UsageRecord()
    total.CopyFrom(record)
    for field, value in deltas.ListFields():
        if field.name not in ("tenant", "period"):
            setattr(total, field.name, getattr(total, field.name) + value)
    return total


class UsageStore:
    def __init__(self, kv: KeyValue, flush_seconds: float = 1.0) -> None:
        self.kv, self.flush_seconds = kv, flush_seconds
        self.pending: dict[str, gateway_pb2.UsageRecord] = {}  # KV key -> counts not yet written
        self.shared: dict[str, tuple[float, gateway_pb2.UsageRecord]] = {}  # KV key -> (read at, record)
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever())

    async def stop(self) -> None:
        """Stop the flushing loop, then write what is still counted. The loop is not cancelled: a
        flush cut off mid-write would lose the counts it had taken."""
        self._stopping.set()
        if self._task:
            await self._task
        await self.flush()

    def add(self, tenant: str, now: float, **deltas) -> None:
        """Count usage for today and this month, e.g. add("acme", time.time(), queries=1, llm_tokens=120)."""
        for period in (day_key(now), month_key(now)):
            key = f"{tenant}.{period}"
            record = self.pending.setdefault(key, gateway_pb2.UsageRecord(tenant=tenant, period=period))
            for name, value in deltas.items():
                setattr(record, name, getattr(record, name) + value)

    async def get(self, tenant: str, now: float) -> tuple[gateway_pb2.UsageRecord, gateway_pb2.UsageRecord]:
        """Today's and this month's totals: shared, plus this process's unwritten counts."""
        return tuple([await self._total(tenant, period) for period in (day_key(now), month_key(now))])

    async def _total(self, tenant: str, period: str) -> gateway_pb2.UsageRecord:
        key = f"{tenant}.{period}"
        read = self.shared.get(key)
        if read is None or time.monotonic() - read[0] >= self.flush_seconds:
            record, _ = await self._read(key)
            read = (time.monotonic(), record or gateway_pb2.UsageRecord(tenant=tenant, period=period))
            self.shared[key] = read
        return added(read[1], self.pending.get(key, gateway_pb2.UsageRecord()))

    async def _read(self, key: str) -> tuple[gateway_pb2.UsageRecord | None, int]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, 0
        return gateway_pb2.UsageRecord.FromString(entry.value), entry.revision

    async def flush(self) -> None:
        """Add every pending count to its shared record (compare-and-set, retried on a conflict).
        Counts that cannot be written now stay pending for the next flush."""
        batch, self.pending = self.pending, {}
        for key, deltas in batch.items():
            try:
                while True:
                    record, revision = await self._read(key)
                    total = added(record or gateway_pb2.UsageRecord(tenant=deltas.tenant, period=deltas.period), deltas)
                    try:
                        if revision:
                            await self.kv.update(key, total.SerializeToString(), last=revision)
                        else:
                            await self.kv.create(key, total.SerializeToString())
                        break
                    except KeyWrongLastSequenceError:
                        continue
            except Exception:
                log.warning("usage not written yet; kept for the next flush", extra={"fields": {"key": key}})
                self.pending[key] = added(deltas, self.pending.get(key, gateway_pb2.UsageRecord()))
                continue
            self.shared[key] = (time.monotonic(), total)

    async def _flush_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.flush_seconds)
            except TimeoutError:
                await self.flush()
