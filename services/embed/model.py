"""The embedding model: ONNX Runtime + `tokenizers`, mean pooling, L2 normalisation."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from services.common.tokenizer import load_tokenizer


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class EmbeddingModel:
    model_path: Path
    tokenizer_path: Path
    name: str
    max_tokens: int = 256
    threads: int = 0
    pooling: str = "mean"  # mean | cls
    normalize: bool = True
    # A dynamically quantised model scales each activation tensor by its largest value: a batch's
    # texts (and padding) would change each other's vectors, so each text runs alone.
    one_text_per_run: bool = False

    def __post_init__(self) -> None:
        self.session: ort.InferenceSession | None = None
        self.extra_sessions: dict[str, ort.InferenceSession] = {}
        self.tokenizer: Tokenizer | None = None
        self.model_id = ""
        self.dimension = 0

    def load(self) -> None:
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling {self.pooling!r} is not supported: use mean or cls")
        self.session = self._session(self.threads or (os.cpu_count() or 1))
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.tokenizer = load_tokenizer(self.tokenizer_path, self.max_tokens)
        self.model_id = f"{self.name}@sha256:{file_sha256(self.model_path)}"

    def tokenize(self, texts: list[str]) -> list[Encoding]:
        return self.tokenizer.encode_batch(texts, add_special_tokens=True)

    def _session(self, threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn the cores the other services need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])

    def session_for(self, name: str, threads: int = 0) -> ort.InferenceSession:
        """A session of its own (same file; `threads` intra-op threads, default as configured), so
        callers can run side by side."""
        if name not in self.extra_sessions:
            self.extra_sessions[name] = self._session(threads or self.threads or (os.cpu_count() or 1))
        return self.extra_sessions[name]

    def embed_encodings(self, encodings: list[Encoding], session: ort.InferenceSession | None = None) -> np.ndarray:
        """Rows are independent of their neighbours: masked padding, or one text per run."""
        if self.one_text_per_run and len(encodings) > 1:
            return np.concatenate([self._run([e], session) for e in encodings])
        return self._run(encodings, session)

    def _run(self, encodings: list[Encoding], session: ort.InferenceSession | None) -> np.ndarray:
        """One forward pass."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = (session or self.session).run(None, feeds)[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_encodings(self.tokenize(texts))
