"""A synchronous gateway client for the command line and scripts."""

import ipaddress
import json
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import grpc

from rag.v1 import gateway_pb2, gateway_pb2_grpc
from services.cli.local import client_target, data_dir
from services.cli.private import write_private
from services.common.config import ServiceSettings
from services.common.tls import channel_credentials

UPLOAD_PIECE = 1 << 20
MAX_WAITING_S = 120.0
LONGEST_WAIT_S = 10.0
ALLOW_PLAINTEXT = "RAGMESH_ALLOW_PLAINTEXT_KEY"


class PlaintextRefused(click.ClickException):
    """Shown by the command line as `Error: …`, exit status 1."""


def on_this_machine(addr: str) -> bool:
    """Whether every address the gateway's host name resolves to is a loopback one (or a socket file)."""
    if addr.startswith("unix:"):
        return True
    host = addr.removeprefix("dns:///").rsplit(":", 1)[0].strip("[]")
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(resolved) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in resolved)


def check_plaintext(addr: str, key: str, tls: bool) -> None:
    """An API key travels in plaintext only to this machine; elsewhere only when allowed, and loudly."""
    if tls or not key or on_this_machine(addr):
        return
    if os.environ.get(ALLOW_PLAINTEXT, "").lower() in ("1", "true", "yes"):
        print(f"WARNING: sending the API key in plaintext to {addr}: anyone on the way can read it", file=sys.stderr)
        return
    raise PlaintextRefused(
        f"refusing to send the API key in plaintext to {addr} (not this machine): set RAGMESH_TLS_CA_FILE "
        f"to use TLS, or pass --allow-plaintext-key ({ALLOW_PLAINTEXT}=1) to send it anyway"
    )


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


def sync_channel(addr: str, key: str = "") -> grpc.Channel:
    """Plaintext, or TLS verified with RAGMESH_TLS_CA_FILE (with a client certificate when one is set).
    With an API key to send, plaintext only to this machine unless allowed (check_plaintext)."""
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    credentials = channel_credentials(ServiceSettings())
    check_plaintext(addr, key, tls=credentials is not None)
    if credentials is None:
        return grpc.insecure_channel(addr, options=options)
    return grpc.secure_channel(addr, credentials, options=options)


class Client:
    def __init__(self, data: Path | None, api_key: str | None = None, addr: str | None = None) -> None:
        default_addr, key = client_target(data_dir(data))
        addr = addr or default_addr
        self.key = api_key or key
        self.channel = sync_channel(addr, self.key)
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
        return self.upload_pieces(
            header, lambda: (content[start : start + UPLOAD_PIECE] for start in range(0, len(content), UPLOAD_PIECE))
        )

    def upload_pieces(
        self, header: gateway_pb2.DocumentHeader, pieces: Callable[[], Iterator[bytes]]
    ) -> gateway_pb2.IngestDocumentResponse:
        """Stream a document; `pieces` starts reading it afresh (a retried upload reads it again)."""

        def parts():
            yield gateway_pb2.IngestDocumentRequest(header=header)
            for piece in pieces():
                yield gateway_pb2.IngestDocumentRequest(data=piece)

        return with_backoff(lambda: self.stub.IngestDocument(parts(), metadata=self.metadata, timeout=120))


def tenant_key(
    admin: Client, data: Path, tenant: str, purpose: str = "ragmesh cli", role: int = gateway_pb2.ROLE_WRITER
) -> str:
    """A key of `role` for `tenant`, made once with the operator key and kept (owner-only) in the data
    dir. Evaluations that search other index generations than the active one need an operator's."""
    path = data / "tenant-keys.json"
    keys = json.loads(path.read_text()) if path.exists() else {}
    name = tenant if role == gateway_pb2.ROLE_WRITER else f"{tenant}/{gateway_pb2.Role.Name(role)}"
    if name not in keys:
        response = admin.call(
            "CreateApiKey", gateway_pb2.CreateApiKeyRequest(tenant=tenant, role=role, description=purpose)
        )
        keys[name] = response.api_key
        write_private(path, json.dumps(keys))
    return keys[name]


def client_for(data: Path | None, tenant: str | None) -> Client:
    """The default client, or one acting for another tenant (needs the operator key of `ragmesh up`)."""
    if not tenant:
        return Client(data)
    return Client(data, api_key=tenant_key(Client(data), data_dir(data), tenant))
