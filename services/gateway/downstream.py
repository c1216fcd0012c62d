"""Calls from the gateway to the internal services: every one carries a deadline (the client's
remaining time, or the method's default), and a downstream error is passed on with its status."""

import contextvars
import json

import grpc

from services.common.config import GatewaySettings
from services.common.refusal import Refused

# The gateway method being served (each RPC runs in its own task, so its own context).
CURRENT_METHOD: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_method", default="")


class Downstream:
    def __init__(self, settings: GatewaySettings) -> None:
        self.defaults = {k: float(v) for k, v in json.loads(settings.method_deadlines or "{}").items()}
        self.fallback = settings.request_timeout_seconds

    def timeout(self, context) -> float:
        remaining = context.time_remaining()
        default = self.defaults.get(CURRENT_METHOD.get(), self.fallback)
        return default if remaining is None else max(0.001, min(remaining, default * 10))

    async def call(self, context, rpc, request):
        try:
            return await rpc(request, timeout=self.timeout(context))
        except grpc.aio.AioRpcError as exc:
            raise Refused(exc.code(), exc.details()) from None

    async def found(self, context, rpc, request):
        """The reply, or None when the service answers NOT_FOUND."""
        try:
            return await rpc(request, timeout=self.timeout(context))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Refused(exc.code(), exc.details()) from None
