"""The interceptor every service runs: RPC latency by method and status, in-flight RPCs,
infrastructure failures (NATS unreachable) reported as UNAVAILABLE instead of UNKNOWN, and
`Refused` raised by a handler answered with its status."""

import contextlib
import time

import grpc
import nats.errors
from prometheus_client import Gauge, Histogram

from services.common.refusal import Refused

RPC_LATENCY = Histogram(
    "ragmesh_rpc_latency_seconds",
    "Server-side latency of gRPC methods.",
    ["service", "method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RPC_IN_FLIGHT = Gauge("ragmesh_rpc_in_flight", "gRPC calls being served.", ["service", "method"])


UNAVAILABLE_ERRORS = (nats.errors.Error, ConnectionError)


async def _unavailable(context, exc: Exception) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, f"the message store (NATS) is unreachable, retry: {exc}")


def _observed(labels: tuple[str, str]):
    """Around one call: in-flight gauge, latency by final status, refusals as their status,
    infrastructure errors as UNAVAILABLE."""

    @contextlib.asynccontextmanager
    async def observe(context):
        started = time.perf_counter()
        RPC_IN_FLIGHT.labels(*labels).inc()
        try:
            yield
        except Refused as exc:
            if exc.retry_after_ms is not None:
                context.set_trailing_metadata((("retry-after-ms", str(exc.retry_after_ms)),))
            await context.abort(exc.code, exc.message)
        except UNAVAILABLE_ERRORS as exc:
            await _unavailable(context, exc)
        finally:
            code = context.code() if hasattr(context, "code") else None
            name = code.name if isinstance(code, grpc.StatusCode) else "OK"
            RPC_LATENCY.labels(*labels, name).observe(time.perf_counter() - started)
            RPC_IN_FLIGHT.labels(*labels).dec()

    return observe


def _not_ready(handler, service: str):
    """Health and reflection answer from the start; the service's own methods wait until it is warm."""
    message = f"{service} is starting (warming up); retry shortly"

    async def unary(request, context):
        await context.abort(grpc.StatusCode.UNAVAILABLE, message)

    async def streaming(request, context):
        await context.abort(grpc.StatusCode.UNAVAILABLE, message)
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_unary:
        return handler._replace(unary_unary=unary)
    if handler.unary_stream:
        return handler._replace(unary_stream=streaming)
    if handler.stream_unary:
        return handler._replace(stream_unary=unary)
    return handler._replace(stream_stream=streaming)


class RpcInterceptor(grpc.aio.ServerInterceptor):
    """Times unary calls and the whole life of streaming calls; maps infrastructure errors."""

    def __init__(self, service: str, ready=lambda: True) -> None:
        self.service = service
        self.ready = ready

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        labels = (self.service, method)
        if not handler_call_details.method.startswith("/grpc.") and not self.ready():
            return _not_ready(handler, self.service)

        observed = _observed(labels)

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary_unary(request, context):
                async with observed(context):
                    return await inner(request, context)

            return handler._replace(unary_unary=unary_unary)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def unary_stream(request, context):
                async with observed(context):
                    async for item in inner_stream(request, context):
                        yield item

            return handler._replace(unary_stream=unary_stream)
        if handler.stream_unary:
            inner_upload = handler.stream_unary

            async def stream_unary(request_iterator, context):
                async with observed(context):
                    return await inner_upload(request_iterator, context)

            return handler._replace(stream_unary=stream_unary)
        inner_bidi = handler.stream_stream

        async def stream_stream(request_iterator, context):
            async with observed(context):
                async for item in inner_bidi(request_iterator, context):
                    yield item

        return handler._replace(stream_stream=stream_stream)
