"""A synchronous gateway client for the command line and scripts."""

import json
import random
import time
from pathlib import Path

import grpc

from rag.v1 import gateway_pb2, gateway_pb2_grpc
from services.cli.local import client_target, data_dir
from services.common.config import ServiceSettings
from services.common.tls import channel_credentials

UPLOAD_PIECE = 1 << 20
MAX_WAITING_S = 120.0
LONGEST_WAIT_S = 10.0


def with_backoff(call):
    """Run a call; when a rate limit answers RESOURCE_EXHAUSTED with a short `retry-after-ms` hint, wait
    that long (with jitter, so that concurrent callers do not retry in step) and try again, for up to
    MAX_WAITING_S in all. A spent budget (a reset hours away) or a missing hint is reported at once."""
    waited = 0.0
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            hint = dict(exc.trailing_metadata() or ()).get("retry-after-ms")
            if hint is None or int(hint) / 1000 > LONGEST_WAIT_S or waited > MAX_WAITING_S:
                raise
            pause = max(int(hint) / 1000, 0.02) * (1 + random.random())
            time.sleep(pause)
            waited += pause


def sync_channel(addr: str) -> grpc.Channel:
    """Plaintext, or TLS verified with RAGMESH_TLS_CA_FILE (with a client certificate when one is set)."""
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    credentials = channel_credentials(ServiceSettings())
    if credentials is None:
        return grpc.insecure_channel(addr, options=options)
    return grpc.secure_channel(addr, credentials, options=options)


class Client:
    def __init__(self, data: Path | None, api_key: str | None = None, addr: str | None = None) -> None:
        default_addr, key = client_target(data_dir(data))
        addr = addr or default_addr
        self.key = api_key or key
        self.channel = sync_channel(addr)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = (("x-api-key", self.key),)

    def call(self, method: str, request, timeout: float = 60.0):
        return with_backoff(lambda: getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout))

    def call_timed(self, method: str, request, timeout: float = 60.0) -> tuple:
        """(response, milliseconds of the attempt that succeeded): waits for a rate limit are not latency."""
        took = []

        def attempt():
            started = time.perf_counter()
            response = getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)
            took.append((time.perf_counter() - started) * 1000)
            return response

        return with_backoff(attempt), took[-1]

    def call_stream(self, method: str, request, timeout: float = 60.0) -> list:
        """A server-streaming call, read to the end (and retried as a whole when rate-limited)."""
        return with_backoff(lambda: list(getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)))

    def upload(self, header: gateway_pb2.DocumentHeader, content: bytes) -> gateway_pb2.IngestDocumentResponse:
        def parts():
            yield gateway_pb2.IngestDocumentRequest(header=header)
            for start in range(0, len(content), UPLOAD_PIECE):
                yield gateway_pb2.IngestDocumentRequest(data=content[start : start + UPLOAD_PIECE])

        return with_backoff(lambda: self.stub.IngestDocument(parts(), metadata=self.metadata, timeout=120))


def tenant_key(admin: Client, data: Path, tenant: str, purpose: str = "ragmesh cli") -> str:
    """A writer key for `tenant`, made once with the admin key and kept (owner-only) in the data dir."""
    path = data / "tenant-keys.json"
    keys = json.loads(path.read_text()) if path.exists() else {}
    if tenant not in keys:
        response = admin.call(
            "CreateApiKey",
            gateway_pb2.CreateApiKeyRequest(tenant=tenant, role=gateway_pb2.ROLE_WRITER, description=purpose),
        )
        keys[tenant] = response.api_key
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
    return keys[tenant]


def client_for(data: Path | None, tenant: str | None) -> Client:
    """The default client, or one acting for another tenant (needs the admin key of `ragmesh up`)."""
    if not tenant:
        return Client(data)
    return Client(data, api_key=tenant_key(Client(data), data_dir(data), tenant))
