"""Settings from the environment only (`RAGMESH_*`), one class per service."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ServiceSettings(BaseSettings):
    """What every service reads."""

    model_config = SettingsConfigDict(env_prefix="RAGMESH_", extra="ignore")

    listen_host: str = Field("127.0.0.1", description="Interface the gRPC server binds.")
    grpc_port: int = Field(50051, description="Port of this service's gRPC server.")
    metrics_port: int = Field(0, description="Prometheus /metrics port; 0 turns it off.")
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s), comma separated.")
    nats_replicas: int = Field(1, description="JetStream copies of every stream and bucket (3 on a NATS cluster).")
    index_retention_days: float = Field(
        30.0,
        ge=0,
        description="Longest an index event stays in the stream (0: no age limit); snapshots let it go sooner.",
    )
    nats_password: str = Field(
        "", description="Password of this service's NATS user (named after the service; from a Secret). Empty: none."
    )
    data_dir: Path = Field(Path(".ragmesh"), description="Folder for local state.")
    log_level: str = Field("INFO", description="Python log level.")
    drain_seconds: float = Field(10.0, description="Grace period for in-flight RPCs on SIGTERM.")
    instance: str = Field("", description="Instance name on logs, traces and metrics.")
    trace_content: bool = Field(False, description="Put question and query text on spans (off: privacy).")
    tls_cert_file: Path | None = Field(None, description="PEM certificate chain: this server's, and its client cert.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(
        None, description="PEM CA of the internal services: clients verify servers with it; servers, clients."
    )
    tls_client_auth: bool = Field(True, description="With a CA: require client certificates (mTLS); off at gateway.")


class EmbedSettings(ServiceSettings):
    model_path: Path | None = Field(None, description="ONNX file; default: the file of the model named below.")
    tokenizer_path: Path | None = Field(None, description="tokenizer.json; default: the packaged one.")
    model_name: str = Field(
        "all-MiniLM-L6-v2",
        description="Embedding model: all-MiniLM-L6-v2 (packaged) or all-MiniLM-L6-v2-int8 (derived at set-up); "
        "with a model_path, only the name half of the model id.",
    )
    models: str = Field(
        "",
        description="Embedding models served at once, by name, comma separated; the first is the default "
        "(what ingestion embeds with), the others serve index generations built with them. Empty: model_name alone.",
    )
    derived_models_dir: Path | None = Field(
        None, description="Folder of the derived model files; default: the installation's (made by `make setup`)."
    )
    max_tokens: int = Field(256, description="Truncation length in tokens.")
    pooling: str = Field("mean", description="Pooling of token vectors: mean or cls.")
    normalize: bool = Field(True, description="L2-normalise vectors (cosine = dot product).")
    batch_token_budget: int = Field(1024, description="Padded tokens per inference batch (measured best: 512-1024).")
    intra_op_threads: int = Field(0, description="onnxruntime threads; 0 = one per core.")
    max_texts_per_request: int = Field(256, description="Texts in one Embed call.")
    max_chars_per_text: int = Field(20000, description="Characters in one text.")
    queue_limit: int = Field(4096, description="Texts waiting per lane before RESOURCE_EXHAUSTED.")
    bulk_linger_ms: float = Field(5.0, description="How long a part-full bulk batch waits for more texts.")
    bulk_patience_ms: float = Field(
        500.0, ge=0, description="Longest a bulk text waits for partners of its length before it goes regardless."
    )
    bulk_workers: int = Field(
        0, ge=0, description="Bulk batches run at once, one thread each; 0 = one per core, 1 = one on every core."
    )


class IngestSettings(ServiceSettings):
    embed_addr: str = Field("127.0.0.1:50053", description="host:port of the embed service.")
    max_document_bytes: int = Field(50 * MIB, description="Largest accepted document.")
    inline_job_bytes: int = Field(
        256 * 1024,
        ge=0,
        description="Documents up to this size travel inside their job message too: no object-store read per job.",
    )
    chunk_target_tokens: int = Field(200, description="Target chunk size in embedding tokens.")
    chunk_overlap_tokens: int = Field(24, description="Tokens carried over between chunks.")
    max_chunks_per_document: int = Field(20000, description="Chunks one document may produce.")
    worker_concurrency: int = Field(
        32, description="Jobs one worker process runs at once (many keep the embed queue deep: less padding)."
    )
    worker_bytes_in_flight: int = Field(
        128 * MIB, gt=0, description="Document bytes one worker works on at once; a larger document runs alone."
    )
    max_deliveries: int = Field(5, description="Attempts of a job before it is dead-lettered.")
    embed_batch_size: int = Field(64, description="Chunks per Embed call and per index event.")
    job_ack_wait_seconds: float = Field(60.0, description="A job not acked or extended for this long is redelivered.")
    tokenizer_path: Path | None = Field(None, description="tokenizer.json for chunk sizes; default: packaged.")
    max_tokens: int = Field(256, description="The embedding model's token limit.")
    rechunk_poll_seconds: float = Field(
        5.0, gt=0, description="How often ingest looks for re-chunk generations whose documents nobody queued."
    )
    usage_flush_seconds: float = Field(
        1.0, gt=0, description="How often usage counted in memory is added to the shared totals in NATS KV."
    )
    parse_processes: int = Field(
        2, ge=1, description="Documents one ingest process parses at once, each in a separate process with limits."
    )
    parse_cpu_seconds: float = Field(
        300.0, gt=0, description="CPU time one document's parsing may take (OCR included); past it the document fails."
    )
    parse_wall_seconds: float = Field(600.0, gt=0, description="Wall time one document's parsing may take.")
    parse_memory_bytes: int = Field(
        1024 * MIB, gt=0, description="Memory (RSS) of a parsing process while it parses one document."
    )
    pdf_max_pages: int = Field(5000, ge=1, description="Pages of a PDF; more fails the document before extraction.")
    pdf_max_objects: int = Field(2_000_000, ge=1, description="Objects a PDF declares.")
    pdf_max_content_bytes: int = Field(
        256 * MIB, ge=1, description="Page content a PDF asks to interpret; a stream shared by N pages counts N times."
    )
    max_inflated_bytes: int = Field(
        256 * MIB,
        ge=1,
        description="What a zipped document (DOCX) may expand to; it holds this size of the in-flight budget.",
    )
    ocr_engine: Literal["rapidocr", "tesseract", "off"] = Field(
        "rapidocr",
        description="OCR of pages without text and pictures of text: rapidocr, tesseract (if installed) or off.",
    )
    ocr_languages: str = Field("eng", description="Tesseract's languages, '+' separated (e.g. eng+ara).")
    ocr_dpi: int = Field(200, ge=72, le=600, description="Resolution pages are rendered at for OCR.")
    upload_secret: str = Field(
        "", description="Base64 of 32 bytes sealing upload passwords; empty: one generated in the data folder."
    )
    nats_storage_limit_bytes: int = Field(
        0,
        ge=0,
        description="NATS's JetStream file limit (its max_file_store), reported beside the storage in use; 0: unknown.",
    )


class RetrieveSettings(ServiceSettings):
    embed_addr: str = Field("127.0.0.1:50053", description="host:port of the embed service.")
    index_dir: Path | None = Field(None, description="Index folder; default: <data_dir>/retrieve.")
    fusion_method: str = Field(
        "auto", description="Default fusion: auto (decided per query), rrf, minmax, zscore, dense or lexical."
    )
    fusion_dense_weight: float = Field(
        0.9, description="Weight of the dense side for rrf, minmax and zscore, in [0, 1]."
    )
    dense_languages: str = Field(
        "en",
        description="Languages the embedding model knows (ISO 639-1, comma separated; empty: any). "
        "auto ranks queries in other languages by BM25.",
    )
    auto_dense_weight: float = Field(0.8, ge=0, le=1, description="auto: dense weight at a BM25 margin of 0.4.")
    auto_margin_slope: float = Field(
        2.0, ge=0, description="auto: dense weight lost per unit of BM25 margin (best score - 10th, over the best)."
    )
    rerank_url: str = Field(
        "", description="Cross-encoder reranking service (TEI, Cohere/Jina-style or llama.cpp); empty: no reranking."
    )
    rerank_api: Literal["auto", "tei", "cohere", "llamacpp"] = Field(
        "auto", description="Wire format of rerank_url: tei (/rerank), cohere (/v1/rerank), llamacpp, or auto (probed)."
    )
    rerank_model: str = Field("", description="Model name sent to a Cohere/Jina-style or llama.cpp reranker.")
    rerank_api_key: str = Field("", description="Bearer token for the reranker (from a Secret).")
    rerank_top_n: int = Field(
        20, ge=1, le=200, description="Fused hits the reranker reorders (at least top_k are fetched)."
    )
    rerank_timeout_ms: float = Field(
        300.0,
        gt=0,
        description="Budget of one rerank call; past it (or on an error) the fused order is returned, flagged.",
    )
    query_vector_cache_size: int = Field(
        1000,
        ge=0,
        description="Query vectors kept per tenant (LRU) so a repeated query is not embedded again; 0 = off.",
    )
    query_vector_cache_tenants: int = Field(
        64, ge=1, description="Tenants whose query vectors are kept (LRU); a tenant hits only its own entries."
    )
    rrf_k: float = Field(10.0, description="RRF constant.")
    candidate_depth: int = Field(100, description="Candidates taken from each engine.")
    dense_depth: int = Field(0, description="Candidates taken from the dense engine; 0 = candidate_depth.")
    lexical_depth: int = Field(0, description="Candidates taken from the lexical engine; 0 = candidate_depth.")
    max_per_document: int = Field(0, description="Default cap of chunks per document in results; 0 = none.")
    max_top_k: int = Field(100, description="Largest top_k a caller may ask for.")
    consumer_name: str = Field("retrieve", description="Durable index-stream consumer of this replica.")
    index_linger_seconds: float = Field(
        0.05, ge=0, description="How long applying waits for more index events to share one engine commit."
    )
    generation_poll_seconds: float = Field(
        1.0, gt=0, description="How often a replica reads the shared index-generation pointer."
    )
    ready_max_lag: int = Field(
        100,
        ge=0,
        description="Index events a generation may trail the stream by and still answer searches (readiness).",
    )
    index_writer: bool = Field(
        True, description="With shared engines: this replica may become their one writer (holds the lease)."
    )
    writer_lease_seconds: float = Field(
        15.0, gt=0, description="Term of the writer lease over shared engines; a successor waits this out."
    )
    snapshot_interval_seconds: float = Field(
        3600.0, gt=0, description="Longest between two snapshots of a generation that changed (embedded engines)."
    )
    snapshot_min_events: int = Field(
        10000, ge=1, description="Index events after which a generation is snapshotted before the interval is up."
    )
    dense_payload_in_memory: bool = Field(
        True, description="Qdrant Edge keeps chunk payloads in RAM (about the corpus text): searches 1.5x faster."
    )
    dense_hot_points: int = Field(
        5000, gt=0, description="Qdrant Edge: points the shard taking new chunks holds (searched without a graph)."
    )
    dense_seal_seconds: float = Field(
        300.0, gt=0, description="Qdrant Edge: longest a new chunk waits before its shard is sealed for a graph build."
    )
    dense_merge_factor: int = Field(
        2, ge=2, description="Qdrant Edge: sealed shards of one size class merged into one, in the background."
    )
    dense_max_shard_points: int = Field(
        200_000, gt=0, description="Qdrant Edge: largest shard a merge makes (loading it stalls retrieve ~1 s/100k)."
    )
    dense_url: str = Field("", description="Qdrant server URL (http://qdrant:6333); empty: embedded Qdrant Edge.")
    dense_api_key: str = Field("", description="Qdrant API key (from a Secret).")
    dense_collection: str = Field("ragmesh_chunks", description="Qdrant collection.")
    lexical_url: str = Field(
        "", description="OpenSearch URL (http://user:pass@opensearch:9200); empty: embedded Tantivy."
    )
    lexical_index: str = Field("ragmesh-chunks", description="OpenSearch index.")


class GenerateSettings(ServiceSettings):
    provider: str = Field("extractive", description="extractive (no LLM) or openai (any OpenAI-compatible endpoint).")
    max_answer_sentences: int = Field(3, description="Sentences in an answer.")
    min_dense_score: float = Field(
        0.45, description="Best dense score at or above this: evidence enough to answer from (see Answers)."
    )
    min_dense_with_agreement: float = Field(
        0.3,
        description="Or at or above this, when dense and BM25 agree on the top document and it covers the question.",
    )
    min_question_coverage: float = Field(
        0.6, ge=0, le=1, description="Share of the question's terms the top chunks must hold for that second way."
    )
    min_sentence_overlap: float = Field(0.2, description="Share of question terms a sentence must hold.")
    embed_addr: str = Field("127.0.0.1:50053", description="host:port of the embed service (groundedness checks).")
    llm_url: str = Field("", description="Base URL of the chat-completions API, e.g. http://vllm:8000/v1.")
    llm_model: str = Field("", description="Model name sent to the endpoint.")
    llm_api_key: str = Field("", description="Bearer token for the endpoint (from a Secret).")
    llm_stream: bool = Field(True, description="Stream the completion (server-sent events).")
    llm_timeout_seconds: float = Field(60.0, description="Longest wait for one completion (or the caller's deadline).")
    llm_max_retries: int = Field(3, description="Retries on HTTP 429/5xx and connection errors, before any text.")
    llm_max_tokens: int = Field(400, description="Completion token limit.")
    llm_temperature: float = Field(0.0, description="Sampling temperature.")
    llm_prices: str = Field(
        "{}", description='USD per million tokens by model, JSON: {"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}'
    )
    prompt_token_budget: int = Field(2000, description="Tokens of rules, sources and question in one prompt.")
    llm_max_sources: int = Field(
        8, ge=1, description="Sources in one prompt at most (a small local model reads ~40 tokens/s: fewer)."
    )
    llm_source_tokens: int = Field(
        0, ge=0, description="Tokens of one source in a prompt at most, its sentences nearest the question; 0: no cap."
    )
    min_support_overlap: float = Field(0.6, description="Share of a sentence's terms its sources must hold.")
    min_support_cosine: float = Field(0.7, description="Or: cosine to a sentence of its sources.")


class LlmServerSettings(ServiceSettings):
    """The local LLM server (`ragmesh up --llm local`, `python -m services.llm`)."""

    llm_model_path: Path | None = Field(
        None, description="GGUF file of the local LLM; default: the packaged Qwen2.5-Coder-0.5B-Instruct."
    )
    llm_port: int = Field(8080, description="HTTP port of the local LLM server (/v1/chat/completions, /health).")
    llm_threads: int = Field(
        1, ge=1, description="CPU threads of the local LLM (one was several times faster than two on 2 shared cores)."
    )
    llm_context_tokens: int = Field(4096, ge=512, description="Context window of the local LLM, in its tokens.")
    llm_parallel: int = Field(1, ge=1, description="Completions the local LLM runs at once (each has its slot).")


class GatewaySettings(ServiceSettings):
    ingest_addr: str = Field("127.0.0.1:50052", description="host:port of the ingest service.")
    retrieve_addr: str = Field("127.0.0.1:50054", description="host:port of the retrieve service.")
    generate_addr: str = Field("127.0.0.1:50055", description="host:port of the generate service.")
    bootstrap_key_sha256: str = Field("", description="sha256 of the operator key (tenant `default`).")
    max_document_bytes: int = Field(50 * MIB, description="Largest accepted upload.")
    uploads_in_flight: int = Field(
        16, ge=0, description="Uploads streaming through this gateway at once, all tenants; 0 = unlimited."
    )
    max_question_chars: int = Field(2000, description="Longest question or query.")
    max_top_k: int = Field(100, description="Largest top_k.")
    default_top_k: int = Field(8, description="top_k when the caller gives none.")
    request_timeout_seconds: float = Field(
        30.0, description="Deadline for downstream calls when the client sends none and its method has no default."
    )
    method_deadlines: str = Field(
        '{"Search": 10, "Ask": 30, "Replay": 30, "IngestDocument": 120}',
        description="Default deadline in seconds per gateway method, JSON; a client deadline takes precedence.",
    )
    answer_cache_size: int = Field(1024, description="Answers kept in the cache; 0 turns it off.")
    answer_cache_ttl_seconds: float = Field(300.0, description="How long a cached answer may be served.")
    audit_retention_days: float = Field(
        30.0, description="How long answers stay replayable and audit events kept (answers KV TTL, RAG_AUDIT age)."
    )
    tenant_limits: str = Field(
        "", description='JSON limits per tenant over "default", e.g. {"acme": {"query_rate": 5}}; see Governance.'
    )
    key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a key record read from NATS KV is trusted; bounds a revocation's delay elsewhere.",
    )
    usage_flush_seconds: float = Field(
        1.0, gt=0, description="How often usage counted in memory is added to the shared totals in NATS KV."
    )
    conversation_ttl_seconds: float = Field(
        86400.0, gt=0, description="How long a conversation's turns are kept after its last turn (NATS KV TTL)."
    )
    conversation_turns: int = Field(
        10, ge=1, le=50, description="Earlier turns a conversation keeps and a question is read with."
    )
