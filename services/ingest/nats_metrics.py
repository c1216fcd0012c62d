"""What ingest tells Prometheus about NATS: when the oldest unfinished job was queued (the
ingestion lag), the size of each stream it uses (the dead-letter stream among them), and the
JetStream storage the account uses against its limit.

Read by a loop of its own, apart from the workers, so that a stalled worker cannot freeze the
numbers that show it stalling; and the oldest job is exported as a time, not an age, so that its
age keeps growing in Prometheus (`time() - …`) even while nothing here refreshes it.
"""

import asyncio
import contextlib
import json
import logging
from datetime import datetime

import nats
from prometheus_client import Gauge

from services.common import nats_access, natsio

log = logging.getLogger(__name__)

OLDEST_JOB = Gauge(
    "ragmesh_ingest_oldest_job_timestamp_seconds",
    "When the oldest ingestion job still waiting or in flight was queued (Unix time; 0: none).",
)
STREAM_BYTES = Gauge("ragmesh_nats_stream_bytes", "Bytes a JetStream stream holds.", ["stream"])
STREAM_MESSAGES = Gauge("ragmesh_nats_stream_messages", "Messages a JetStream stream holds.", ["stream"])
STORAGE = Gauge("ragmesh_nats_storage_bytes", "JetStream file storage the services' account uses.")
STORAGE_LIMIT = Gauge(
    "ragmesh_nats_storage_limit_bytes",
    "JetStream file storage the account may use: NATS's account limit, else the configured one (0: unknown).",
)


def unix_time(text: str) -> float:
    """An RFC 3339 time as NATS writes it (nanoseconds, `Z`) in Unix seconds."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def oldest_job(stream_info: dict) -> float:
    """The work-queue stream keeps a job until it is acknowledged (done, failed or dead-lettered):
    its first message is the oldest job not finished."""
    state = stream_info.get("state", {})
    return unix_time(state["first_ts"]) if state.get("messages") else 0.0


def storage_limit(account_info: dict, configured: int) -> int:
    """The account's own limit when NATS has one (-1: none), else the configured server limit."""
    limit = account_info.get("limits", {}).get("max_storage", -1)
    return limit if limit > 0 else configured


class NatsObserver:
    def __init__(self, nc: nats.NATS, configured_limit: int = 0, interval: float = 5.0) -> None:
        self.nc, self.configured_limit, self.interval = nc, configured_limit, interval
        self.streams = nats_access.streams("ingest")
        self._task: asyncio.Task | None = None

    async def _api(self, subject: str) -> dict:
        reply = json.loads((await self.nc.request(f"{nats_access.API}.{subject}", b"", timeout=5)).data)
        if "error" in reply:
            raise RuntimeError(f"{subject}: {reply['error'].get('description', reply['error'])}")
        return reply

    async def observe(self) -> None:
        """One reading of every figure."""
        for stream in self.streams:
            try:
                info = await self._api(f"STREAM.INFO.{stream}")
            except RuntimeError:  # not declared yet by its owner
                continue
            STREAM_BYTES.labels(stream).set(info["state"]["bytes"])
            STREAM_MESSAGES.labels(stream).set(info["state"]["messages"])
            if stream == natsio.STREAM_JOBS.name:
                OLDEST_JOB.set(oldest_job(info))
        account = await self._api("INFO")
        STORAGE.set(account.get("storage", 0))
        STORAGE_LIMIT.set(storage_limit(account, self.configured_limit))

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        while True:
            try:
                await self.observe()
            except Exception:  # NATS away: the figures keep their last values (the oldest job ages on)
                log.debug("NATS figures not refreshed", exc_info=True)
            await asyncio.sleep(self.interval)
