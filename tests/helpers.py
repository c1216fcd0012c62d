"""Shared test helpers: free ports, a real nats-server, the real embed service in-process."""

import asyncio
import random
import shutil
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int = 16) -> int:
    """The first of `size` consecutive free ports."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - size)
        if all(port_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def nats_binary() -> str:
    return shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")


class NatsServer:
    """A real nats-server with JetStream on a free port and a temp store dir; `config` adds lines to
    its configuration file (limits, authorization)."""

    def __init__(self, store: Path, port: int | None = None, config: str = "") -> None:
        self.store = store
        self.port = port or free_port_block(1)
        self.config = config
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.store.parent / f"nats-{self.port}.log"

    def start(self) -> "NatsServer":
        self.store.mkdir(parents=True, exist_ok=True)
        conf = self.store.parent / f"nats-{self.port}.conf"
        conf.write_text(
            f'listen: 127.0.0.1:{self.port}\njetstream {{ store_dir: "{self.store}" }}\n'
            f'log_file: "{self.log}"\n{self.config}\n'
        )
        self.proc = subprocess.Popen(
            [nats_binary(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@asynccontextmanager
async def serving(service, port: int):
    """A ragmesh service's gRPC server in this process, once its health check says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from services.common.server import serve

    stop = asyncio.Event()
    task = asyncio.create_task(serve(service, stop))
    addr = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(addr) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                if task.done():
                    task.result()  # the service failed to start: say why
                await asyncio.sleep(0.1)
        yield addr
    finally:
        stop.set()
        await task


@asynccontextmanager
async def embed_service(**settings):
    """The real embed service (real ONNX model) serving on a free port; yields its address."""
    from services.common.config import EmbedSettings
    from services.embed.server import EmbedService

    port = free_port_block(1)
    async with serving(EmbedService(EmbedSettings(grpc_port=port, **settings)), port) as addr:
        yield addr
