"""A synchronous gateway client for the command line and scripts."""

from pathlib import Path

import grpc

from rag.v1 import gateway_pb2, gateway_pb2_grpc
from services.cli.local import client_target, data_dir

UPLOAD_PIECE = 1 << 20


class Client:
    def __init__(self, data: Path | None, api_key: str | None = None, addr: str | None = None) -> None:
        default_addr, key = client_target(data_dir(data))
        addr = addr or default_addr
        self.key = api_key or key
        self.channel = grpc.insecure_channel(
            addr, options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        )
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = (("x-api-key", self.key),)

    def call(self, method: str, request, timeout: float = 60.0):
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)

    def upload(self, header: gateway_pb2.DocumentHeader, content: bytes) -> gateway_pb2.IngestDocumentResponse:
        def parts():
            yield gateway_pb2.IngestDocumentRequest(header=header)
            for start in range(0, len(content), UPLOAD_PIECE):
                yield gateway_pb2.IngestDocumentRequest(data=content[start : start + UPLOAD_PIECE])

        return self.stub.IngestDocument(parts(), metadata=self.metadata, timeout=120)
