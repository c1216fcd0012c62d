"""The real local LLM (`python -m services.llm`: llama.cpp's server with the packaged GGUF) as a
process on a free port, behind a TCP proxy that counts completions a client closed before they
ended, the way the chat-completions fake counts its broken streams."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from helpers import free_port_block

from services.cli.children import dying_with_parent
from services.llm.model import DEFAULT_MODEL, default_model_path

MODEL = DEFAULT_MODEL


def model_installed() -> bool:
    return default_model_path().is_file()


class ClosingProxy:
    """Forwards TCP to `upstream`. A client closing its connection while a response is still under
    way (a request went up and no `data: [DONE]` or complete JSON body came back yet) counts as a
    disconnect."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.disconnects = 0
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ClosingProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        state = {"open": False}  # a response is under way

        def down() -> None:
            try:
                while data := upstream.recv(65536):
                    if b"[DONE]" in data or b'"finish_reason":"stop"' in data or b'"finish_reason":"length"' in data:
                        state["open"] = False
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=down, daemon=True).start()
        try:
            while data := client.recv(65536):
                if data.startswith(b"POST "):
                    state["open"] = True
                    with self._lock:
                        self.requests += 1
                upstream.sendall(data)
        except OSError:
            pass
        if state["open"]:
            with self._lock:
                self.disconnects += 1
        for sock in (upstream, client):
            sock.close()


class LocalLlm:
    """`python -m services.llm` on a free port, ended with the test run however that ends."""

    def __init__(self, log: Path, threads: int = 1) -> None:
        self.port = free_port_block(1)
        self.log, self.threads = log, threads
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "LocalLlm":
        env = {**os.environ, "RAGMESH_LLM_PORT": str(self.port), "RAGMESH_LLM_THREADS": str(self.threads)}
        self.proc = subprocess.Popen(
            dying_with_parent([sys.executable, "-m", "services.llm"]),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local LLM exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the local LLM did not answer /health")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
