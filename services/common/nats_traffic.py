"""What a service's NATS connections carry, for Prometheus: messages and bytes in and out, counted
by the client itself (requests to JetStream, their replies, publishes, fetched messages, acks).
Summed over a process's connections; a closed connection's counts stay in the total."""

import weakref

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import REGISTRY, Collector


class NatsTraffic(Collector):
    def __init__(self) -> None:
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._gone = {"in_msgs": 0, "out_msgs": 0, "in_bytes": 0, "out_bytes": 0}

    def watch(self, nc) -> None:
        self._connections.add(nc)
        weakref.finalize(nc, self._keep, nc.stats)  # the stats dict outlives nothing else

    def _keep(self, stats: dict) -> None:
        for key in self._gone:
            self._gone[key] += stats.get(key, 0)

    def totals(self) -> dict[str, int]:
        totals = dict(self._gone)
        for nc in list(self._connections):
            for key in totals:
                totals[key] += nc.stats.get(key, 0)
        return totals

    def collect(self):
        totals = self.totals()
        messages = CounterMetricFamily(
            "ragmesh_nats_client_messages", "NATS messages this process sent and received.", labels=["direction"]
        )
        data = CounterMetricFamily(
            "ragmesh_nats_client_bytes", "NATS payload bytes this process sent and received.", labels=["direction"]
        )
        for direction in ("in", "out"):
            messages.add_metric([direction], totals[f"{direction}_msgs"])
            data.add_metric([direction], totals[f"{direction}_bytes"])
        yield messages
        yield data


TRAFFIC = NatsTraffic()
REGISTRY.register(TRAFFIC)
