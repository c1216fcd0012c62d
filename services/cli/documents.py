"""`ragmesh ingest` and `ragmesh docs`: upload documents, see and manage the registry."""

import io
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import grpc
import typer

from rag.v1 import gateway_pb2, types_pb2
from ragmesh_client import Client
from services.cli.client import client_for
from services.cli.files import Options, PathProblem, collect, open_file
from services.cli.options import DataDir, JsonOut, NullBar, TenantOpt, doc_dict, emit, fail, status_name

docs_app = typer.Typer(help="Documents in the registry.", no_args_is_help=True)
TERMINAL_JOBS = {types_pb2.JOB_STATUS_DONE, types_pb2.JOB_STATUS_FAILED, types_pb2.JOB_STATUS_DEDUPLICATED}


def _jsonl_rows(path: Path) -> Iterator[tuple[gateway_pb2.DocumentHeader, bytes]]:
    """One document per line, read as they are sent. Split on "\\n" only: texts may hold Unicode
    line separators."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line.decode("utf-8"))
                header = gateway_pb2.DocumentHeader(
                    doc_id=str(row["_id"]), title=row.get("title", ""), content_type="text/plain", source_name=path.name
                )
                yield header, row.get("text", "").encode()


def _count_rows(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def _bounded(pool: ThreadPoolExecutor, work, items, limit: int):
    """`work` over `items` with at most `limit` submitted at once (items are read as they go)."""
    pending: set = set()
    for item in items:
        if len(pending) >= limit:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
        pending.add(pool.submit(work, item))
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from (future.result() for future in done)


def _wait_jobs(client: Client, jobs: list[str], show: bool) -> dict[str, types_pb2.JobRecord]:
    pending, done = list(jobs), {}
    with typer.progressbar(length=len(jobs), label="indexing", file=sys.stderr) if show else NullBar() as bar:
        while pending:
            still = []
            for index, job_id in enumerate(pending):
                job = client.get_job(job_id)
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


def _metadata(items: list[str]) -> dict[str, str]:
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--meta {item!r}: use KEY=VALUE")
        found[key] = value
    return found


def ingest(
    paths: list[Path] = typer.Argument(None, help="Files and folders."),
    jsonl: Path = typer.Option(None, "--jsonl", help="One document per line: _id, title, text."),
    wait_: bool = typer.Option(False, "--wait", help="Wait until every document is indexed or failed."),
    concurrency: int = typer.Option(8, help="Uploads in flight."),
    acl: list[str] = typer.Option(None, "--acl", help="A principal allowed to read the documents (repeatable)."),
    public: bool = typer.Option(False, "--public", help="Everyone in the tenant may read the documents."),
    meta: list[str] = typer.Option(None, "--meta", help="KEY=VALUE metadata on every document (repeatable)."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", help="Follow links out of the folders."),
    include_hidden: bool = typer.Option(False, "--include-hidden", help="Take dotfiles and dot-folders too."),
    include_vcs: bool = typer.Option(False, "--include-vcs", help="Take .git, .hg, .svn … folders too."),
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
    """Upload documents (folders: their files, ids prefixed by the folder's name); ingestion runs off
    the request path (see `ragmesh docs get`)."""
    if not acl and not public:
        raise typer.BadParameter("say who may read the documents: --acl PRINCIPAL (repeatable) or --public")
    if bool(jsonl) == bool(paths):
        raise typer.BadParameter("give files and folders, or --jsonl")
    readers = [*(acl or []), *(["public"] if public else [])]
    metadata = _metadata(meta or [])
    skipped: list[tuple[str, str]] = []
    if jsonl:
        count = _count_rows(jsonl)
        items = ((header, lambda content=content: io.BytesIO(content)) for header, content in _jsonl_rows(jsonl))
    else:
        try:
            found, skipped = collect(paths, Options(follow_symlinks, include_hidden, include_vcs))
        except PathProblem as exc:
            raise typer.BadParameter(str(exc)) from None
        count = len(found)
        items = (
            (
                gateway_pb2.DocumentHeader(doc_id=f.doc_id, source_name=f.source_name, title=Path(f.source_name).stem),
                lambda path=f.path: open_file(path),
            )
            for f in found
        )
    if not count:
        raise typer.BadParameter("nothing to ingest" + (f" ({len(skipped)} left out; see --json)" if skipped else ""))
    client = client_for(data, tenant)
    results, errors = [], []

    def send(item):
        header, opener = item
        header.acl.extend(readers)
        header.metadata.update(metadata)
        try:
            with opener() as stream:
                if pdf_password and stream.read(1024).lstrip().startswith(b"%PDF"):
                    header.password = pdf_password
                stream.seek(0)
                sent = client.upload(
                    stream,
                    doc_id=header.doc_id,
                    title=header.title,
                    acl=header.acl,
                    metadata=header.metadata,
                    content_type=header.content_type,
                    source_name=header.source_name,
                    password=header.password,
                )
                return header.doc_id, sent, None
        except OSError as exc:
            return header.doc_id, None, f"cannot read it: {exc.strerror or exc}"
        except grpc.RpcError as exc:
            return header.doc_id, None, f"{exc.code().name}: {exc.details()}"

    show = not as_json and sys.stderr.isatty()
    with (
        ThreadPoolExecutor(concurrency) as pool,
        typer.progressbar(length=count, label="uploading", file=sys.stderr) if show else NullBar() as bar,
    ):
        for doc_id, response, error in _bounded(pool, send, items, 2 * concurrency):
            bar.update(1)
            if error:
                errors.append({"doc_id": doc_id, "error": error})
            else:
                results.append(response)
    jobs = [r.job_id for r in results if not r.deduplicated]
    finished = _wait_jobs(client, jobs, show) if wait_ and jobs else {}
    failed = [
        {"doc_id": j.doc_id, "error": j.error} for j in finished.values() if j.status == types_pb2.JOB_STATUS_FAILED
    ]
    summary = {
        "submitted": len(results),
        "deduplicated": sum(r.deduplicated for r in results),
        "metadata_updated": sum(r.metadata_updated for r in results),
        "rejected": errors,
        "skipped": [{"path": path, "reason": why} for path, why in skipped],
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
            f"rejected {len(errors)}, left out {len(skipped)}"
            + (
                f", indexed {summary['indexed']}, failed {len(failed)}, {summary['embedding_tokens']} tokens embedded"
                if wait_
                else ""
            )
        )
        for item in errors + failed:
            typer.echo(f"  {item['doc_id']}: {item['error']}", err=True)
        for path, why in skipped:
            typer.echo(f"  left out {path}: {why}", err=True)
    if errors or failed:
        raise typer.Exit(1)


@docs_app.command("list")
def docs_list(
    include_deleted: bool = typer.Option(False, "--deleted"),
    data: Path = DataDir,
    tenant: str = TenantOpt,
    as_json: bool = JsonOut,
):
    """Documents of your tenant that your key may read, with version and status."""
    try:
        documents = client_for(data, tenant).list_documents(include_deleted=include_deleted)
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit({"documents": [doc_dict(d) for d in documents]})
        return
    for d in documents:
        status = status_name(types_pb2.DocumentStatus, d.status, "DOCUMENT_STATUS_")
        chunks = d.versions[-1].chunk_count if d.versions else 0
        typer.echo(f"{d.doc_id}\tv{d.current_version}\t{status}\t{chunks} chunks")


@docs_app.command("get")
def docs_get(doc_id: str, data: Path = DataDir, tenant: str = TenantOpt, as_json: bool = JsonOut):
    """One document: every version, status, chunk count and error."""
    try:
        record = client_for(data, tenant).get_document(doc_id)
    except grpc.RpcError as exc:
        fail(exc)
    out = doc_dict(record)
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
        record = client_for(data, tenant).delete_document(doc_id)
    except grpc.RpcError as exc:
        fail(exc)
    emit(doc_dict(record)) if as_json else typer.echo(f"deleted {doc_id}")


@docs_app.command("retry")
def docs_retry(doc_id: str, data: Path = DataDir, tenant: str = TenantOpt, as_json: bool = JsonOut):
    """Re-queue a document whose current version failed."""
    try:
        response = client_for(data, tenant).retry_document(doc_id)
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit({"doc_id": doc_id, "job_id": response.job_id, "version": response.version})
    else:
        typer.echo(f"re-queued {doc_id} v{response.version} as job {response.job_id}")
