"""gRPC service bootstrap: health (NOT_SERVING until warm), reflection, metrics, SIGTERM drain."""

import abc
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import start_http_server

from services.common.config import ServiceSettings
from services.common.interceptor import RpcInterceptor
from services.common.logs import setup_logging
from services.common.telemetry import setup_tracing
from services.common.tls import server_credentials

log = logging.getLogger(__name__)

GRPC_MESSAGE_LIMIT = 64 * 1024 * 1024


class Service(abc.ABC):
    """One service process. Subclasses register servicers, warm up in `start`, release in `stop`."""

    name = "service"

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.ready = False

    @abc.abstractmethod
    def register(self, server: grpc.aio.Server) -> Iterable[str]:
        """Add servicers; return their full service names (for health and reflection)."""

    async def start(self) -> None:
        """Heavy work (models, indexes, NATS). Health turns SERVING once it returns."""
        return None  # a service without warm-up serves at once

    async def stop(self) -> None:
        """Release what `start` acquired, after in-flight RPCs have drained."""
        return None  # nothing acquired by default


async def serve(service: Service, stop_event: asyncio.Event | None = None) -> None:
    settings = service.settings
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), RpcInterceptor(service.name, lambda: service.ready)],
        options=[
            ("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT),
            ("grpc.max_send_message_length", GRPC_MESSAGE_LIMIT),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service.register(server))
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    address = f"{settings.listen_host}:{settings.grpc_port}"
    credentials = server_credentials(settings)
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if bound == 0:
        raise SystemExit(f"{service.name}: cannot bind {address}")
    await server.start()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.listen_host)
    tls = "off" if not credentials else "mtls" if settings.tls_ca_file and settings.tls_client_auth else "tls"
    log.info("listening", extra={"fields": {"address": address, "tls": tls}})

    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_event.set)

    # A stop asked for while warming up (waiting for NATS, a model, an index to catch up) ends the
    # warm-up rather than waiting for it.
    starting = asyncio.create_task(service.start())
    stopping = asyncio.create_task(stop_event.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        log.info("stopped while starting")
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await server.stop(0)
        return
    stopping.cancel()
    starting.result()  # a failed start says why
    service.ready = True
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving")

    await stop_event.wait()
    log.info("draining", extra={"fields": {"grace_s": settings.drain_seconds}})
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.drain_seconds)
    await service.stop()
    log.info("stopped")


def run(service_factory: Callable[[], Service]) -> None:
    service = service_factory()
    setup_logging(service.name, service.settings.log_level)
    tracing = setup_tracing(service.name, service.settings.instance)
    asyncio.run(serve(service))
    # The service has closed what it held (indexes, NATS, files); spans and logs are flushed here.
    # Then leave without finalizing the interpreter: freeing the heap (models, indexes, caches)
    # object by object took about a second per process, work the kernel does at once.
    tracing.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
