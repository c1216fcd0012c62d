"""One writer for engines shared by several retrieve replicas: a lease in NATS KV.

The record names its holder and when it expires (wall clock). The holder renews it by
compare-and-set every third of its term; anyone may take it over by compare-and-set once it has
expired. The holder counts itself the writer only until its last renewal plus the term minus a
safety margin (on its own monotonic clock), so with clocks within the margin of each other no two
replicas write at once; a holder that cannot renew (NATS unreachable, a long pause) stops writing
before a successor may start.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from rag.v1 import retrieve_pb2

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, kv: KeyValue, key: str, holder: str, term_seconds: float = 15.0) -> None:
        self.kv, self.key, self.holder, self.term = kv, key, holder, term_seconds
        self.margin = term_seconds / 3
        self._valid_until = 0.0  # monotonic
        self._task: asyncio.Task | None = None

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    async def _read(self) -> tuple[retrieve_pb2.WriterLease | None, int]:
        try:
            entry = await self.kv.get(self.key)
        except KeyNotFoundError:
            return None, 0
        if not entry.value:
            return None, entry.revision
        return retrieve_pb2.WriterLease.FromString(entry.value), entry.revision

    async def holder_now(self) -> str:
        """Who holds the lease now ("" when nobody does)."""
        record, _ = await self._read()
        if record is None or record.expires_unix_ms < time.time() * 1000:
            return ""
        return record.holder

    async def try_acquire(self) -> bool:
        """Take or renew the lease; whether this replica holds it now."""
        started = time.monotonic()
        record, revision = await self._read()
        now_ms = time.time() * 1000
        if record is not None and record.holder != self.holder and record.expires_unix_ms >= now_ms:
            self._valid_until = 0.0
            return False
        renewed = retrieve_pb2.WriterLease(holder=self.holder, expires_unix_ms=int(now_ms + self.term * 1000))
        try:
            if revision:
                await self.kv.update(self.key, renewed.SerializeToString(), last=revision)
            else:
                await self.kv.create(self.key, renewed.SerializeToString())
        except KeyWrongLastSequenceError:
            self._valid_until = 0.0
            return False
        self._valid_until = started + self.term - self.margin
        return True

    async def release(self) -> None:
        """Give the lease up at once (a graceful stop), so a successor need not wait it out."""
        self._valid_until = 0.0
        try:
            record, revision = await self._read()
            if record is not None and record.holder == self.holder:
                expired = retrieve_pb2.WriterLease(holder=self.holder, expires_unix_ms=0)
                await self.kv.update(self.key, expired.SerializeToString(), last=revision)
        except Exception:
            log.warning("writer lease not released; it expires on its own", exc_info=True)

    def run(self, on_gain: Callable[[], Awaitable[None]], on_loss: Callable[[], Awaitable[None]]) -> None:
        """Keep trying to hold the lease; call on_gain when this replica becomes the writer and
        on_loss as soon as it may no longer write."""

        async def loop() -> None:
            writing = False
            while True:
                try:
                    await self.try_acquire()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("writer lease not renewed", exc_info=True)
                if self.held and not writing:
                    writing = True
                    log.info("writing the shared index", extra={"fields": {"holder": self.holder}})
                    await on_gain()
                elif not self.held and writing:
                    writing = False
                    log.warning("writer lease lost: no longer writing", extra={"fields": {"holder": self.holder}})
                    await on_loss()
                # Often enough to renew in time and to notice a lapse before a successor may start.
                await asyncio.sleep(self.term / 6)

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.release()
