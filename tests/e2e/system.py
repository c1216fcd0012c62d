"""`ragmesh up` as a real process tree on free ports, and a gateway client for tests."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from rag.v1 import gateway_pb2, gateway_pb2_grpc, types_pb2
from services.cli.children import dying_with_parent

TERMINAL = {types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED}


class System:
    def __init__(self, data: Path, port_base: int, env: dict | None = None, args: tuple[str, ...] = ()) -> None:
        self.data, self.port_base, self.args = data, port_base, args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.gateway = f"127.0.0.1:{port_base + 1}"

    def start(self, timeout: float = 240) -> "System":
        command = [sys.executable, "-m", "services.cli", "up", "--data-dir", str(self.data)]
        # Ended with the test run however that ends, in a session of its own as from a terminal.
        self.proc = subprocess.Popen(
            dying_with_parent([*command, "--port-base", str(self.port_base), *self.args]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        self.lines = lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if "ready" in line:
                assert self.gateway in line
                return self
        raise RuntimeError("ragmesh up did not become ready:\n" + "".join(seen))

    def printed(self, count: int, timeout: float = 10.0) -> list[str]:
        """The next `count` lines `ragmesh up` printed (after `ready`, when called after start)."""
        return [self.lines.get(timeout=timeout).rstrip("\n") for _ in range(count)]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(60)
        return self.proc.returncode if self.proc else 0

    @property
    def pids(self) -> dict[str, int]:
        """The supervisor's children by name, as it last wrote them."""
        return json.loads((self.data / "pids.json").read_text())

    @property
    def admin_key(self) -> str:
        return (self.data / "admin.key").read_text().strip()

    def client(self, key: str | None = None) -> "Client":
        return Client(self.gateway, self.admin_key if key is None else key)


class Client:
    def __init__(self, addr: str, key: str) -> None:
        self.channel = grpc.insecure_channel(addr)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = (("x-api-key", key),) if key else ()

    def ingest(self, doc_id: str, content: bytes, **header) -> gateway_pb2.IngestDocumentResponse:
        def parts():
            yield gateway_pb2.IngestDocumentRequest(header=gateway_pb2.DocumentHeader(doc_id=doc_id, **header))
            yield gateway_pb2.IngestDocumentRequest(data=content)

        return self.stub.IngestDocument(parts(), metadata=self.metadata, timeout=30)

    def wait(self, job_id: str, timeout: float = 120) -> types_pb2.JobRecord:
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            try:
                job = self.stub.GetJob(gateway_pb2.GetJobRequest(job_id=job_id), metadata=self.metadata, timeout=10).job
            except grpc.RpcError as exc:  # a service restarting: retry, as any client would
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                time.sleep(0.2)
                continue
            if job.status in TERMINAL:
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} not finished: {job}")

    def ingest_and_wait(self, doc_id: str, content: bytes, **header) -> types_pb2.JobRecord:
        return self.wait(self.ingest(doc_id, content, **header).job_id)

    def search(self, query: str, top_k: int = 10) -> gateway_pb2.SearchResponse:
        return self.stub.Search(gateway_pb2.SearchRequest(query=query, top_k=top_k), metadata=self.metadata, timeout=30)

    def ask(
        self, question: str, no_cache: bool = False, timeout: float = 30, **fields
    ) -> tuple[list[str], gateway_pb2.AskFinal]:
        deltas, final = [], None
        request = gateway_pb2.AskRequest(question=question, no_cache=no_cache, **fields)
        for message in self.stub.Ask(request, metadata=self.metadata, timeout=timeout):
            if message.HasField("final"):
                final = message.final
            else:
                deltas.append(message.delta)
        return deltas, final

    def create_key(self, tenant: str, role=gateway_pb2.ROLE_WRITER, principals=()) -> str:
        return self.stub.CreateApiKey(
            gateway_pb2.CreateApiKeyRequest(tenant=tenant, role=role, principals=list(principals)),
            metadata=self.metadata,
            timeout=10,
        ).api_key


def cli(system, *args: str, key: str | None = None, env: dict | None = None) -> str:
    """Run `ragmesh ARGS` against the test system as a user would; its stdout."""
    env = {**os.environ, "RAGMESH_DATA_DIR": str(system.data), **(env or {})}
    if key:
        env["RAGMESH_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def cli_json(system, *args: str, key: str | None = None, env: dict | None = None) -> dict:
    return json.loads(cli(system, *args, "--json", key=key, env=env))
