"""The writer lease over shared engines, against a real nats-server: one holder at a time; a holder
that stops renewing (killed, paused, cut off) stops counting itself the writer before anyone else
may take over; a graceful stop hands over at once."""

import asyncio
import time

from services.common import natsio
from services.retrieve.lease import Lease


async def eventually(condition, tries: int = 400) -> None:
    """Until `condition()` (sync or async) holds."""
    for _ in range(tries):
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_one_holder_at_a_time_and_a_lapsed_holder_stops_before_a_successor_starts(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await natsio.ensure_all(js)
        kv = await js.key_value(natsio.KV_INDEX)
        first, second = Lease(kv, "writer", "a", term_seconds=1.5), Lease(kv, "writer", "b", term_seconds=1.5)

        assert await first.try_acquire() and first.held
        assert not await second.try_acquire() and not second.held
        assert await second.holder_now() == "a"
        assert await first.try_acquire()  # renewing keeps it

        # The first holder stops renewing (a pause, a partition): it stops writing first...
        await eventually(lambda: not first.held)
        lapsed_at = time.monotonic()
        assert not await second.try_acquire(), "a successor took over while the holder could still write"
        # ...and only once the term is over may the second take it.
        await eventually(second.try_acquire)
        assert time.monotonic() >= lapsed_at and second.held and not first.held
        assert not await first.try_acquire() and await first.holder_now() == "b"

        # A graceful stop hands the lease over at once.
        await second.release()
        assert await first.try_acquire() and await second.holder_now() == "a"
    finally:
        await nc.close()


async def test_the_gain_and_loss_callbacks_follow_the_lease(nats_server):
    nc = await natsio.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await natsio.ensure_all(js)
        kv = await js.key_value(natsio.KV_INDEX)
        events: list[str] = []

        async def note(what: str):
            events.append(what)

        async def nothing():
            pass

        rival = Lease(kv, "writer", "b", term_seconds=0.9)
        rival.run(nothing, nothing)
        await eventually(lambda: rival.held)
        lease = Lease(kv, "writer", "a", term_seconds=0.9)
        lease.run(lambda: note("gained"), lambda: note("lost"))
        await asyncio.sleep(2.0)
        assert events == [] and not lease.held  # the rival renews: "a" never writes
        await rival.stop()  # a graceful stop: "a" takes over
        await eventually(lambda: events == ["gained"])
        # "a" is cut off from renewing (its key is taken over by force, as a partition would look):
        await kv.put("writer", b"")
        taken = Lease(kv, "writer", "c", term_seconds=5)
        await eventually(taken.try_acquire)
        await eventually(lambda: events == ["gained", "lost"])
        assert not lease.held
        await lease.stop()
    finally:
        await nc.close()
