"""Server reflection through the interceptor every service runs (its stream-stream RPC included)."""

import asyncio

from helpers import free_port_block, serving
from reflection import reflect

from services.common.config import GenerateSettings
from services.generate.server import GenerateService


async def test_a_reflection_client_lists_services_and_resolves_a_method():
    port = free_port_block(1)
    async with serving(GenerateService(GenerateSettings(grpc_port=port, drain_seconds=1)), port) as addr:
        services, types = await asyncio.to_thread(reflect, addr, "rag.v1.GenerateService/Generate")
    assert services == {"rag.v1.GenerateService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    assert types == ["rag.v1.GenerateRequest", "rag.v1.GenerateResponse"]
