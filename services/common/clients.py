"""gRPC client channels: traced, with message limits matching the servers."""

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from services.common.config import ServiceSettings
from services.common.server import GRPC_MESSAGE_LIMIT
from services.common.tls import channel_credentials


def channel(address: str, settings: ServiceSettings | None = None) -> grpc.aio.Channel:
    """A channel to another service: TLS (mTLS with this service's certificate) when configured."""
    options = [
        ("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT),
        ("grpc.max_send_message_length", GRPC_MESSAGE_LIMIT),
    ]
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(address, interceptors=aio_client_interceptors(), options=options)
    return grpc.aio.secure_channel(address, credentials, interceptors=aio_client_interceptors(), options=options)
