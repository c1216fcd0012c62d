"""A service's NATS traffic in Prometheus, counted by its own client against a real nats-server:
exact deltas, a closed connection's counts kept."""

import gc
import weakref

from prometheus_client import REGISTRY

from services.common import natsio


def sample(direction: str) -> float:
    return REGISTRY.get_sample_value("ragmesh_nats_client_messages_total", {"direction": direction})


async def test_messages_in_and_out_are_counted_exactly_and_outlive_their_connection(nats_server):
    first = await natsio.connect(nats_server.url, "test")
    second = await natsio.connect(nats_server.url, "test")
    before_out, before_in = sample("out"), sample("in")
    # Requests to JetStream's API: each one message out and its reply in, on either connection.
    for nc in (first, first, second):
        assert (await nc.request("$JS.API.INFO", b"", timeout=10)).data  # the account's JetStream info
    await first.publish("traffic.nobody", b"heard by no one")  # out, and nothing comes back
    await first.flush()
    assert (sample("out") - before_out, sample("in") - before_in) == (4, 3)
    await natsio.close(first)
    await natsio.close(second)
    gone = [weakref.ref(first), weakref.ref(second)]
    del first, second, nc
    gc.collect()
    assert [ref() for ref in gone] == [None, None]  # the connections are gone, their counts kept
    assert (sample("out") - before_out, sample("in") - before_in) == (4, 3)
