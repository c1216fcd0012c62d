"""Keeps the index stream bounded, by one replica at a time.

Embedded engines: the holder of the snapshot lease writes a snapshot of each generation it has
caught up once enough events arrived since the last (or the interval passed with any), then
purges the stream below what every snapshot and every consumer passed. Shared engines: the
writer purges below what every consumer passed (a new replica needs no history: it only searches).
"""

import asyncio
import logging
import time

from nats.js import JetStreamContext

from services.common import natsio
from services.common.config import RetrieveSettings
from services.retrieve import snapshots
from services.retrieve.lease import Lease

log = logging.getLogger(__name__)

SNAPSHOT_LEASE_KEY = "snapshotter"


class Maintenance:
    def __init__(self, generations, settings: RetrieveSettings) -> None:
        self.generations, self.settings = generations, settings
        self.last: dict[int, tuple[int, float]] = {}  # generation -> (snapshot watermark, when)
        self.lease: Lease | None = None
        self._task: asyncio.Task | None = None

    @property
    def period(self) -> float:
        return max(0.5, min(60.0, self.settings.snapshot_interval_seconds / 4))

    async def start(self, js: JetStreamContext) -> None:
        self.js = js
        self.objects = await js.object_store(natsio.OBJECTS_SNAPSHOTS)
        if not self.generations.shared:
            kv = await js.key_value(natsio.KV_INDEX)
            self.lease = Lease(kv, SNAPSHOT_LEASE_KEY, self.generations.holder, 3 * self.period + 5)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.lease is not None:
            await self.lease.release()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("index snapshot or purge failed; tried again later", exc_info=True)

    def _due(self, generation) -> bool:
        if generation.consumer is None or not generation.caught_up:
            return False
        watermark, when = self.last.get(generation.number, (0, 0.0))
        moved = generation.state.watermark - watermark
        if moved <= 0:
            return False
        return (
            moved >= self.settings.snapshot_min_events or time.time() - when >= self.settings.snapshot_interval_seconds
        )

    async def run_once(self) -> int:
        """Snapshot what is due and purge what nobody needs; how many events were purged."""
        if self.generations.shared:
            if not self.generations.writing:
                return 0
            return await snapshots.purge(self.js, await snapshots.purge_bound(self.js, None, []))
        if not await self.lease.try_acquire():
            return 0
        numbers = list(self.generations.open)
        for number in numbers:
            if number not in self.last:
                found = await snapshots.snapshots_of(self.objects, number)
                self.last[number] = (found[-1][0], time.time()) if found else (0, 0.0)
        for generation in list(self.generations.open.values()):
            if self._due(generation):
                header = await snapshots.write(self.objects, generation)
                self.last[generation.number] = (header.watermark, time.time())
        return await snapshots.purge(self.js, await snapshots.purge_bound(self.js, self.objects, numbers))
