"""gRPC client channels: traced, with message limits matching the servers."""

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from services.common.server import GRPC_MESSAGE_LIMIT


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        interceptors=aio_client_interceptors(),
        options=[
            ("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT),
            ("grpc.max_send_message_length", GRPC_MESSAGE_LIMIT),
        ],
    )
