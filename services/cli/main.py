"""The `ragmesh` command."""

import json
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from rag.v1 import gateway_pb2, types_pb2
from services.cli.client import Client, client_for, tenant_key
from services.cli.index import index_app
from services.cli.local import DEFAULT_PORT_BASE, data_dir
from services.cli.options import DataDir, JsonOut, emit, fail

app = typer.Typer(help="ragmesh: retrieval-augmented generation as gRPC services.", no_args_is_help=True)
docs_app = typer.Typer(help="Documents in the registry.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(keys_app, name="keys")
app.add_typer(index_app, name="index")

TenantOpt = typer.Option(None, "--tenant", help="Act for this tenant (uses the admin key of `ragmesh up`).")
TERMINAL_JOBS = {types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED, types_pb2.JOB_STATUS_DEDUPLICATED}


def status_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


@app.command()
def up(
    data: Path = DataDir,
    port_base: int = typer.Option(DEFAULT_PORT_BASE, help="First of the ports used."),
    sync_interval: str = typer.Option(
        "always",
        help="JetStream fsync: 'always' (no acked write lost on "
        "power failure, slower) or a duration like '2m' (NATS default).",
    ),
):
    """Start NATS and the five services; print `ready` and the gateway address; Ctrl-C stops all."""
    from services.cli.up import LocalSystem

    system = LocalSystem(data_dir(data), port_base, sync_interval)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        gateway = system.start()
        typer.echo(f"ragmesh ready: gateway {gateway} (data {system.data})", err=False)
        sys.stdout.flush()
        dead = system.watch(
            stop, on_restart=lambda name, code: typer.echo(f"{name} exited with {code}; restarting", err=True)
        )
        if dead:
            typer.echo(f"{dead} keeps exiting; stopping (see {system.data / 'logs' / (dead + '.log')})", err=True)
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        system.stop()
        raise typer.Exit(1) from exc
    system.stop()
    typer.echo("ragmesh stopped")


def _files(paths: list[Path]) -> list[tuple[Path, str]]:
    found = []
    for path in paths:
        if path.is_dir():
            found += [(f, str(f.relative_to(path))) for f in sorted(path.rglob("*")) if f.is_file()]
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise typer.BadParameter(f"{path} does not exist")
    return found


def _jsonl(path: Path):
    # Split on "\n" only: texts may hold Unicode line separators.
    for line in path.read_bytes().decode("utf-8").split("\n"):
        if line.strip():
            row = json.loads(line)
            yield (
                gateway_pb2.DocumentHeader(
                    doc_id=str(row["_id"]), title=row.get("title", ""), content_type="text/plain", source_name=path.name
                ),
                row.get("text", "").encode(),
            )


def _wait_jobs(client: Client, jobs: list[str], show: bool) -> dict[str, types_pb2.JobRecord]:
    pending, done = list(jobs), {}
    with typer.progressbar(length=len(jobs), label="indexing", file=sys.stderr) if show else _nullbar() as bar:
        while pending:
            still = []
            for index, job_id in enumerate(pending):
                job = client.call("GetJob", gateway_pb2.GetJobRequest(job_id=job_id)).job
                if job.status in TERMINAL_JOBS:
                    done[job_id] = job
                    bar.update(1)
                else:
                    still = pending[index:]
                    break
            pending = still
            if pending:
                time.sleep(0.3)
    return done


class _nullbar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(None, help="Files and folders."),
    jsonl: Path = typer.Option(None, "--jsonl", help="One document per line: _id, title, text."),
    wait: bool = typer.Option(False, "--wait", help="Wait until every document is indexed or failed."),
    concurrency: int = typer.Option(8, help="Uploads in flight."),
    acl: list[str] = typer.Option(None, "--acl", help="Principals allowed to see the documents."),
    pdf_password: str = typer.Option(
        "",
        "--pdf-password",
        envvar="RAGMESH_PDF_PASSWORD",
        help="Opens encrypted PDFs (better from the environment than on the command line).",
        show_default=False,
    ),
    data: Path = DataDir,
    tenant: str = TenantOpt,
    as_json: bool = JsonOut,
):
    """Upload documents; ingestion runs off the request path (see `ragmesh docs get`)."""
    client = client_for(data, tenant)
    if jsonl:
        items = list(_jsonl(jsonl))
    else:
        items = [
            (gateway_pb2.DocumentHeader(doc_id=name, source_name=f.name, title=f.stem), f.read_bytes())
            for f, name in _files(paths or [])
        ]
    for header, content in items:
        header.acl.extend(acl or [])
        if pdf_password and content[:1024].lstrip().startswith(b"%PDF"):
            header.password = pdf_password
    if not items:
        raise typer.BadParameter("nothing to ingest: give files, folders or --jsonl")
    results, errors = [], []

    def send(item):
        header, content = item
        try:
            return header.doc_id, client.upload(header, content), None
        except grpc.RpcError as exc:
            return header.doc_id, None, f"{exc.code().name}: {exc.details()}"

    show = not as_json and sys.stderr.isatty()
    with (
        ThreadPoolExecutor(concurrency) as pool,
        typer.progressbar(length=len(items), label="uploading", file=sys.stderr) if show else _nullbar() as bar,
    ):
        for doc_id, response, error in pool.map(send, items):
            bar.update(1)
            if error:
                errors.append({"doc_id": doc_id, "error": error})
            else:
                results.append(response)
    jobs = [r.job_id for r in results if not r.deduplicated]
    finished = _wait_jobs(client, jobs, show) if wait and jobs else {}
    failed = [
        {"doc_id": j.doc_id, "error": j.error} for j in finished.values() if j.status == types_pb2.JOB_STATUS_FAILED
    ]
    summary = {
        "submitted": len(results),
        "deduplicated": sum(r.deduplicated for r in results),
        "metadata_updated": sum(r.metadata_updated for r in results),
        "rejected": errors,
        "indexed": sum(j.status == types_pb2.JOB_STATUS_DONE for j in finished.values()),
        "failed": failed,
        "embedding_tokens": sum(j.embedding_tokens for j in finished.values()),
        "jobs": [
            {"doc_id": r.doc_id, "job_id": r.job_id, "version": r.version, "deduplicated": r.deduplicated}
            for r in results
        ][:1000],
    }
    if as_json:
        emit(summary)
    else:
        typer.echo(
            f"submitted {summary['submitted']} ({summary['deduplicated']} unchanged), "
            f"rejected {len(errors)}"
            + (
                f", indexed {summary['indexed']}, failed {len(failed)}, {summary['embedding_tokens']} tokens embedded"
                if wait
                else ""
            )
        )
        for item in errors + failed:
            typer.echo(f"  {item['doc_id']}: {item['error']}", err=True)
    if errors or failed:
        raise typer.Exit(1)


def _hit_dict(hit: types_pb2.Hit) -> dict:
    return {
        "rank": hit.rank,
        "doc_id": hit.chunk.doc_id,
        "chunk_id": hit.chunk.chunk_id,
        "score": hit.score,
        "dense_score": hit.dense_score,
        "dense_rank": hit.dense_rank,
        "lexical_score": hit.lexical_score,
        "lexical_rank": hit.lexical_rank,
        "version": hit.chunk.version,
        "title": hit.chunk.title,
        "section": hit.chunk.section,
        "text": hit.chunk.text,
    }


@app.command()
def search(
    query: str,
    top_k: int = typer.Option(10, "--top-k"),
    where: list[str] = typer.Option(None, "--where", help="KEY=V1,V2: document metadata KEY is one of the values."),
    since: str = typer.Option("", "--since", help="Documents dated (metadata `date`) on or after this ISO date."),
    until: str = typer.Option("", "--until", help="Documents dated on or before this ISO date."),
    fusion: str = typer.Option("", "--fusion", help="rrf, minmax, zscore, dense or lexical; default: the server's."),
    dense_weight: float = typer.Option(None, "--dense-weight", help="Weight of the dense side, in [0, 1]."),
    dense_depth: int = typer.Option(0, "--dense-depth", help="Candidates from the dense engine."),
    lexical_depth: int = typer.Option(0, "--lexical-depth", help="Candidates from the lexical engine."),
    data: Path = DataDir,
    tenant: str = TenantOpt,
    as_json: bool = JsonOut,
):
    """Hybrid search: hits with their fused, dense and lexical scores."""
    client = client_for(data, tenant)
    params = types_pb2.FusionParams(method=fusion, dense_depth=dense_depth, lexical_depth=lexical_depth)
    if dense_weight is not None:
        params.dense_weight = dense_weight
    filters = []
    for item in where or []:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise typer.BadParameter(f"--where {item!r}: use KEY=VALUE[,VALUE...]")
        filters.append(types_pb2.MetadataFilter(key=key, any_of=values.split(",")))
    request = gateway_pb2.SearchRequest(
        query=query,
        top_k=top_k,
        metadata_filters=filters,
        date_range=types_pb2.DateRange(start=since, end=until),
        fusion=params,
    )
    try:
        response = client.call("Search", request)
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit(
            {
                "query_id": response.query_id,
                "index_watermark": response.index_watermark,
                "index_generation": response.index_generation,
                "model_id": response.embedding_model_id,
                "fusion": MessageToDict(response.fusion, preserving_proto_field_name=True),
                "hits": [_hit_dict(h) for h in response.hits],
            }
        )
        return
    for hit in response.hits:
        typer.echo(
            f"{hit.rank:>3}. {hit.score:.4f}  {hit.chunk.doc_id}  (dense {hit.dense_score:.3f} "
            f"#{hit.dense_rank}, lexical {hit.lexical_score:.2f} #{hit.lexical_rank})"
        )
        typer.echo(f"     {hit.chunk.text[:160]!r}")
    typer.echo(f"index generation {response.index_generation}, watermark {response.index_watermark}")


@app.command()
def ask(
    question: str,
    top_k: int = typer.Option(0, "--top-k"),
    data: Path = DataDir,
    tenant: str = TenantOpt,
    as_json: bool = JsonOut,
):
    """Ask a question: a cited answer from the indexed documents, or an abstention."""
    client = client_for(data, tenant)
    final = None
    try:
        for message in client.call("Ask", gateway_pb2.AskRequest(question=question, top_k=top_k)):
            if message.HasField("final"):
                final = message.final
            elif not as_json:
                typer.echo(message.delta, nl=False)
    except grpc.RpcError as exc:
        fail(exc)
    m = final.manifest
    result = {
        "answer": final.answer,
        "status": status_name(types_pb2.AnswerStatus, final.status, "ANSWER_STATUS_"),
        "abstain_reason": status_name(types_pb2.AbstainReason, final.abstain_reason, "ABSTAIN_REASON_"),
        "confidence": final.confidence,
        "citations": [
            {"source": c.source_number, "doc_id": c.doc_id, "chunk_id": c.chunk_id, "score": c.score, "quote": c.quote}
            for c in final.citations
        ],
        "query_id": m.query_id,
        "trace_id": m.trace_id,
        "cached": final.cached,
        "index_watermark": m.index_watermark,
        "index_generation": m.index_generation,
        "model_id": m.embedding_model_id,
        "manifest": MessageToDict(m),
    }
    if as_json:
        emit(result)
        return
    if final.status == types_pb2.ANSWER_STATUS_ABSTAINED:
        typer.echo(f"(abstained: {result['abstain_reason'].replace('_', ' ')})")
    else:
        typer.echo("")
        for c in final.citations:
            typer.echo(f"  [{c.source_number}] {c.doc_id}  chunk {c.chunk_id}")
    typer.echo(f"confidence {final.confidence:.2f}; query {m.query_id}; watermark {m.index_watermark}")


def _doc_dict(record: types_pb2.DocumentRecord) -> dict:
    out = MessageToDict(record, preserving_proto_field_name=True)
    out["status"] = status_name(types_pb2.DocumentStatus, record.status, "DOCUMENT_STATUS_")
    for version, entry in zip(record.versions, out.get("versions", []), strict=True):
        entry["status"] = status_name(types_pb2.DocumentStatus, version.status, "DOCUMENT_STATUS_")
    return out


@app.command("eval")
def eval_command(
    dataset_dir: Path = typer.Argument(..., help="BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv"),
    modes: str = typer.Option("dense,lexical,hybrid", help="Comma-separated: dense, lexical, hybrid."),
    out: Path = typer.Option(None, "--out", help="Also write a Markdown report here."),
    answers: bool = typer.Option(
        False,
        "--answers",
        help="Also calibrate abstention: ask every judged query where its relevant documents are indexed "
        "(answerable) and where they are held out (unanswerable).",
    ),
    unanswerable: Path = typer.Option(
        None, "--unanswerable", help="Another BEIR dataset whose queries, asked of this corpus, count as unanswerable."
    ),
    generation: int = typer.Option(0, "--generation", help="Index generation to search; 0 = the active one."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Ingest a dataset into a tenant of its own and report nDCG@10, recall@100, MRR@10 and latency;
    with --answers, also abstention precision/recall and the calibrated retrieval gate."""
    from services.cli import evaluate

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in evaluate.MODES]
    if unknown:
        raise typer.BadParameter(f"unknown modes {unknown}; use {', '.join(evaluate.MODES)}")
    dataset = evaluate.load_dataset(dataset_dir)
    admin = Client(data)
    try:
        client = Client(
            data, api_key=tenant_key(admin, data_dir(data), evaluate.tenant_for(dataset.name), "ragmesh eval")
        )
        show = not as_json and sys.stderr.isatty()
        with (
            typer.progressbar(length=len(dataset.corpus), label="indexing", file=sys.stderr)
            if show
            else _nullbar() as bar
        ):
            ingested = evaluate.ingest_corpus(client, dataset, progress=bar.update)
        report = evaluate.evaluate(client, dataset, chosen, generation=generation)
        if answers or unanswerable:
            report["answers"] = _answers(evaluate, admin, data, client, dataset, unanswerable)
    except grpc.RpcError as exc:
        fail(exc)
    report["ingest"] = ingested
    text = evaluate.markdown(report)
    if "answers" in report:
        text += "\n" + evaluate.answers_markdown(report["answers"])
    if out:
        out.write_text(text)
    if as_json:
        emit(report)
    else:
        typer.echo(text)


def _answers(evaluate, admin: Client, data: Path, client: Client, dataset, unanswerable: Path | None) -> dict:
    """Answerable: the judged queries over the whole corpus. Unanswerable: the same queries over the
    corpus without their relevant documents, and the queries of `unanswerable` if given."""
    configured = next(
        m.final.manifest.generation_parameters.get("min_dense_score", "0")
        for m in client.call_stream("Ask", gateway_pb2.AskRequest(question="calibration probe", no_cache=True))
        if m.HasField("final")
    )
    hidden = evaluate.held_out(dataset)
    hidden_client = Client(data, api_key=tenant_key(admin, data_dir(data), evaluate.tenant_for(hidden.name), "eval"))
    evaluate.ingest_corpus(hidden_client, hidden)
    records = evaluate.ask_all(client, dataset.queries, evaluate.ANSWERABLE)
    records += evaluate.ask_all(hidden_client, hidden.queries, "held-out")
    if unanswerable:
        records += evaluate.ask_all(client, evaluate.load_dataset(unanswerable).queries, "out-of-domain")
    return evaluate.answers_report(records, float(configured))


@app.command()
def trace(
    trace_id: str = typer.Argument("", help="Trace id (32 hex digits)."),
    last: bool = typer.Option(False, "--last", help="The latest Ask."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Print a trace recorded by `ragmesh up` as a waterfall (development; production uses Jaeger)."""
    from services.cli import traces

    spans = traces.load_spans(data_dir(data) / "traces")
    trace_id = traces.last_ask(spans) if last else trace_id
    if not trace_id:
        raise typer.BadParameter("give a trace id or --last (no Ask recorded yet?)")
    found = traces.trace_spans(spans, trace_id)
    if not found:
        typer.echo(f"no spans for trace {trace_id} (spans are flushed every 0.5 s)", err=True)
        raise typer.Exit(1)
    if as_json:
        keys = ("trace_id", "span_id", "parent_span_id", "service", "name", "start", "duration_ms", "attributes")
        emit({"trace_id": trace_id, "spans": [{k: s[k] for k in keys} for s in found]})
    else:
        typer.echo(traces.waterfall(found))


@docs_app.command("list")
def docs_list(
    include_deleted: bool = typer.Option(False, "--deleted"),
    data: Path = DataDir,
    tenant: str = TenantOpt,
    as_json: bool = JsonOut,
):
    """Documents of your tenant with version and status."""
    try:
        response = client_for(data, tenant).call(
            "ListDocuments", gateway_pb2.ListDocumentsRequest(include_deleted=include_deleted)
        )
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit({"documents": [_doc_dict(d) for d in response.documents]})
        return
    for d in response.documents:
        status = status_name(types_pb2.DocumentStatus, d.status, "DOCUMENT_STATUS_")
        chunks = d.versions[-1].chunk_count if d.versions else 0
        typer.echo(f"{d.doc_id}\tv{d.current_version}\t{status}\t{chunks} chunks")


@docs_app.command("get")
def docs_get(doc_id: str, data: Path = DataDir, tenant: str = TenantOpt, as_json: bool = JsonOut):
    """One document: every version, status, chunk count and error."""
    try:
        record = client_for(data, tenant).call("GetDocument", gateway_pb2.GetDocumentRequest(doc_id=doc_id)).document
    except grpc.RpcError as exc:
        fail(exc)
    out = _doc_dict(record)
    if as_json:
        emit(out)
        return
    typer.echo(
        f"{record.doc_id}: {out['status']}, current v{record.current_version}, searchable v{record.indexed_version}"
    )
    for v in out.get("versions", []):
        typer.echo(
            f"  v{v['version']} {v['status']} {v.get('chunk_count', 0)} chunks sha256 "
            f"{v['content_sha256'][:12]}"
            + (f" error: {v['error']}" if v.get("error") else "")
            + (f" warnings: {'; '.join(v['warnings'])}" if v.get("warnings") else "")
        )


@docs_app.command("delete")
def docs_delete(doc_id: str, data: Path = DataDir, tenant: str = TenantOpt, as_json: bool = JsonOut):
    """Remove a document's chunks from the index; the registry keeps a tombstone."""
    try:
        record = (
            client_for(data, tenant).call("DeleteDocument", gateway_pb2.DeleteDocumentRequest(doc_id=doc_id)).document
        )
    except grpc.RpcError as exc:
        fail(exc)
    emit(_doc_dict(record)) if as_json else typer.echo(f"deleted {doc_id}")


@docs_app.command("retry")
def docs_retry(doc_id: str, data: Path = DataDir, tenant: str = TenantOpt, as_json: bool = JsonOut):
    """Re-queue a document whose current version failed."""
    try:
        response = client_for(data, tenant).call("RetryDocument", gateway_pb2.RetryDocumentRequest(doc_id=doc_id))
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit({"doc_id": doc_id, "job_id": response.job_id, "version": response.version})
    else:
        typer.echo(f"re-queued {doc_id} v{response.version} as job {response.job_id}")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option(..., "--tenant"),
    role: str = typer.Option("reader", help="reader, writer or admin"),
    principal: list[str] = typer.Option(None, "--principal", help="Principals for document ACLs."),
    description: str = typer.Option(""),
    ttl: int = typer.Option(0, "--ttl", help="Seconds until the key expires; 0 = never."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Create an API key (needs an admin key); the key is shown once."""
    roles = {"reader": gateway_pb2.ROLE_READER, "writer": gateway_pb2.ROLE_WRITER, "admin": gateway_pb2.ROLE_ADMIN}
    if role not in roles:
        raise typer.BadParameter("role is reader, writer or admin")
    try:
        response = Client(data).call(
            "CreateApiKey",
            gateway_pb2.CreateApiKeyRequest(
                tenant=tenant, principals=principal or [], role=roles[role], description=description, ttl_seconds=ttl
            ),
        )
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit({"api_key": response.api_key, "key_id": response.key_id, "tenant": response.tenant, "role": role})
    else:
        typer.echo(response.api_key)


@keys_app.command("list")
def keys_list(tenant: str = typer.Option("", "--tenant"), data: Path = DataDir, as_json: bool = JsonOut):
    """API keys (never the keys themselves): id, tenant, role, principals, state."""
    try:
        keys = Client(data).call("ListApiKeys", gateway_pb2.ListApiKeysRequest(tenant=tenant)).keys
    except grpc.RpcError as exc:
        fail(exc)
    rows = [
        {
            "key_id": k.key_id,
            "tenant": k.tenant,
            "role": status_name(gateway_pb2.Role, k.role, "ROLE_"),
            "principals": list(k.principals),
            "revoked": k.revoked,
            "expires_unix_ms": k.expires_unix_ms,
            "description": k.description,
        }
        for k in keys
    ]
    if as_json:
        emit({"keys": rows})
        return
    for r in rows:
        state = "revoked" if r["revoked"] else (f"expires {r['expires_unix_ms']}" if r["expires_unix_ms"] else "active")
        typer.echo(f"{r['key_id']}\t{r['tenant']}\t{r['role']}\t{','.join(r['principals'])}\t{state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, data: Path = DataDir, as_json: bool = JsonOut):
    """Revoke an API key by its id (from `ragmesh keys list`)."""
    try:
        key = Client(data).call("RevokeApiKey", gateway_pb2.RevokeApiKeyRequest(key_id=key_id)).key
    except grpc.RpcError as exc:
        fail(exc)
    emit({"key_id": key.key_id, "revoked": key.revoked}) if as_json else typer.echo(f"revoked {key.key_id}")


@app.command()
def usage(
    tenant: str = typer.Option("", "--tenant", help="Another tenant (admin key)."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Usage today and this month (UTC), with the limits in force."""
    try:
        response = Client(data).call("GetUsage", gateway_pb2.GetUsageRequest(tenant=tenant))
    except grpc.RpcError as exc:
        fail(exc)
    out = {
        "today": MessageToDict(
            response.today,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        ),
        "this_month": MessageToDict(
            response.this_month,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        ),
        "limits": json.loads(response.limits_json),
    }
    if as_json:
        emit(out)
        return
    for label in ("today", "this_month"):
        u = out[label]
        typer.echo(
            f"{u['tenant']} {u['period']}: {u['queries']} queries, {u['llm_tokens']} LLM tokens, "
            f"${float(u['cost_usd']):.4f}, {u['embedding_tokens']} embedding tokens, {u['documents']} documents"
        )
    typer.echo("limits: " + ", ".join(f"{k}={v}" for k, v in out["limits"].items()))


@app.command()
def replay(query_id: str, data: Path = DataDir, as_json: bool = JsonOut):
    """Re-run a logged Ask; show what changed (retrieved set, ranks, answer, status) and why."""
    try:
        response = Client(data).call("Replay", gateway_pb2.ReplayRequest(query_id=query_id), timeout=120)
    except grpc.RpcError as exc:
        fail(exc)
    original, replayed = response.original, response.replayed
    out = {
        "query_id": query_id,
        "question": original.question,
        "original": {
            "answer": original.answer,
            "status": status_name(types_pb2.AnswerStatus, original.status, "ANSWER_STATUS_"),
            "index_watermark": original.manifest.index_watermark,
            "chunk_ids": [h.chunk.chunk_id for h in original.manifest.hits],
        },
        "replayed": {
            "answer": replayed.answer,
            "status": status_name(types_pb2.AnswerStatus, replayed.status, "ANSWER_STATUS_"),
            "index_watermark": replayed.manifest.index_watermark,
            "query_id": replayed.manifest.query_id,
            "chunk_ids": [h.chunk.chunk_id for h in replayed.manifest.hits],
        },
        "changes": list(response.changes),
        "reasons": list(response.reasons),
    }
    if as_json:
        emit(out)
        return
    typer.echo(f"question: {original.question}")
    typer.echo("unchanged" if not response.changes else "changed: " + "; ".join(response.changes))
    for reason in response.reasons:
        typer.echo(f"  because {reason}")
    if response.changes:
        typer.echo(f"before: {original.answer or '(abstained)'}")
        typer.echo(f"now:    {replayed.answer or '(abstained)'}")


@app.command()
def feedback(
    query_id: str,
    rating: int = typer.Option(..., help="-1 bad, 0 neutral, 1 good"),
    comment: str = typer.Option(""),
    data: Path = DataDir,
):
    """Rate an answer; stored with its audit record."""
    try:
        Client(data).call("Feedback", gateway_pb2.FeedbackRequest(query_id=query_id, rating=rating, comment=comment))
    except grpc.RpcError as exc:
        fail(exc)
    typer.echo(f"feedback stored for {query_id}")
