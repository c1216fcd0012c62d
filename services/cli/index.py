"""`ragmesh index`: index generations — list, rebuild, promote (behind an evaluation), rollback, drop."""

import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from rag.v1 import gateway_pb2, retrieve_pb2
from ragmesh_client import Client
from services.cli.client import connect, tenant_key
from services.cli.local import data_dir
from services.cli.options import DataDir, JsonOut, emit, fail

index_app = typer.Typer(
    help="Index generations: build one beside the active one, switch, go back.", no_args_is_help=True
)


def _pointer_dict(pointer) -> dict:
    return MessageToDict(pointer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _generations(client: Client) -> gateway_pb2.ListIndexGenerationsResponse:
    return client.list_index_generations()


def _wait_replayed(client: Client, number: int, timeout: float, caught_up: bool = False) -> None:
    """Until generation `number` has replayed the stream as it was when it was made (and, with
    `caught_up`, every event since)."""
    deadline = time.monotonic() + timeout
    while True:
        info = next((g for g in _generations(client).generations if g.record.number == number), None)
        if info is None:
            raise typer.BadParameter(f"there is no index generation {number}")
        replayed = info.index_watermark >= info.record.replay_until and (not caught_up or info.lag == 0)
        filled = not info.record.rechunk or info.missing_documents == 0
        if replayed and filled:
            return
        if time.monotonic() > deadline:
            if not filled:
                typer.echo(
                    f"error: generation {number} lacks {info.missing_documents} documents (re-chunking)", err=True
                )
            else:
                typer.echo(f"error: generation {number} is still replaying ({info.lag} events behind)", err=True)
            raise typer.Exit(3)
        time.sleep(0.5)


def _chunking_text(record) -> str:
    if not record.HasField("chunking"):
        return "configured chunking" + (", re-chunked" if record.rechunk else "")
    return f"chunks of {record.chunking.target_tokens} tokens, overlap {record.chunking.overlap_tokens}"


@index_app.command("list")
def index_list(data: Path = DataDir, as_json: bool = JsonOut):
    """Every generation on the retrieve replica that answers: what it is made of, how far it is."""
    try:
        reply = _generations(connect(data))
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit(
            {
                "pointer": _pointer_dict(reply.pointer),
                "generations": [MessageToDict(g, preserving_proto_field_name=True) for g in reply.generations],
            }
        )
        return
    for g in reply.generations:
        mark = "active" if g.active else "previous" if g.previous else ""
        created = datetime.fromtimestamp(g.record.created_unix_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        chunking = _chunking_text(g.record)
        typer.echo(
            f"{g.record.number:>3} {mark:<8} {g.index_generation:<60} watermark {g.index_watermark} "
            f"lag {g.lag}  chunks {g.dense_points}/{g.lexical_documents}  documents {g.documents} "
            f"(missing {g.missing_documents})  {chunking}  {created}  {g.record.reason}"
        )
    if reply.pointer.note:
        typer.echo(f"active because: {reply.pointer.note}")


@index_app.command("rebuild")
def index_rebuild(
    reason: str = typer.Option("", "--reason", help="Why; kept with the generation."),
    rechunk: bool = typer.Option(
        False, "--rechunk", help="Chunk and embed every document again from its stored bytes (a new chunker)."
    ),
    chunk_tokens: int = typer.Option(None, "--chunk-tokens", help="Chunk size of the new generation (re-chunks)."),
    chunk_overlap: int = typer.Option(None, "--chunk-overlap", help="Overlap of the new generation's chunks."),
    model: str = typer.Option(
        "",
        "--model",
        help="Another embedding model the embed service serves (id or name): every chunk is embedded again with it.",
    ),
    wait: bool = typer.Option(False, "--wait", help="Return when the new generation holds every document."),
    timeout: float = typer.Option(3600, "--timeout", help="Seconds --wait may take."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Build a new generation beside the active one, by replaying the index stream, (--rechunk,
    --chunk-tokens) by re-chunking every stored document, or (--model) by embedding every chunk again
    with another model; the active one keeps serving until a promotion."""
    request = gateway_pb2.RebuildIndexRequest(reason=reason, rechunk=rechunk, embedding_model=model)
    if chunk_tokens is not None or chunk_overlap is not None:
        if chunk_tokens is None or chunk_overlap is None:
            raise typer.BadParameter("give --chunk-tokens and --chunk-overlap together")
        request.chunking.target_tokens, request.chunking.overlap_tokens = chunk_tokens, chunk_overlap
    client = connect(data)
    try:
        reply = client.rebuild_index(request)
        record = reply.generation
        if wait:
            _wait_replayed(client, record.number, timeout)
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit(
            {
                **MessageToDict(record, preserving_proto_field_name=True),
                "documents_queued": reply.documents_queued,
                "queued_later": reply.queued_later,
            }
        )
    elif record.rechunk:
        if wait:
            state = "holds every document"
        elif reply.queued_later:
            state = "recorded; ingest queues its documents as soon as it runs"
        else:
            state = f"re-chunking {reply.documents_queued} documents"
        typer.echo(f"generation {record.number}: {state}")
    elif model:
        state = "holds every document" if wait else "re-embedding every chunk"
        typer.echo(f"generation {record.number} ({record.embedding_model_id}): {state}")
    else:
        state = "replayed" if wait else f"replaying {record.replay_until} events"
        typer.echo(f"generation {record.number}: {state}")


def _judged(dataset) -> list[retrieve_pb2.JudgedQuery]:
    queries = dataset.queries.items()
    return [retrieve_pb2.JudgedQuery(id=qid, text=text, relevant=dataset.qrels[qid]) for qid, text in queries]


def _verdict_text(verdict) -> str:
    return ("passed: " if verdict.passed else "failed: ") + verdict.summary


@index_app.command("evaluate")
def index_evaluate(
    number: int = typer.Argument(..., help="The candidate generation."),
    dataset_dir: Path = typer.Option(..., "--dataset", help="BEIR dataset both generations are evaluated on."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="How much worse (nDCG@10) the candidate may be."),
    modes: str = typer.Option("hybrid", help="Comma-separated modes compared: dense, lexical, hybrid."),
    timeout: float = typer.Option(3600, "--timeout", help="Seconds to wait for the candidate to catch up."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Have the server evaluate generation NUMBER against the active one on --dataset (its corpus
    is ingested first, into a tenant of its own); the verdict is kept on the generation's record and
    is what a promotion checks."""
    try:
        verdict = _evaluate(connect(data), data, number, dataset_dir, tolerance, modes, timeout)
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit(MessageToDict(verdict, preserving_proto_field_name=True))
    else:
        typer.echo(_verdict_text(verdict))
    if not verdict.passed:
        raise typer.Exit(1)


def _evaluate(admin: Client, data: Path, number: int, dataset_dir: Path, tolerance: float, modes: str, timeout: float):
    from services.cli import evaluate

    dataset = evaluate.load_dataset(dataset_dir)
    tenant = evaluate.tenant_for(dataset.name)
    client = connect(data, api_key=tenant_key(admin, data_dir(data), tenant, "ragmesh eval"))
    evaluate.ingest_corpus(client, dataset)
    _wait_replayed(admin, number, timeout, caught_up=True)
    request = gateway_pb2.EvaluateIndexRequest(
        number=number,
        dataset=dataset.name,
        tenant=tenant,
        queries=_judged(dataset),
        modes=[m.strip() for m in modes.split(",") if m.strip()],
        tolerance=tolerance,
    )
    return admin.evaluate_index(request).verdict


@index_app.command("promote")
def index_promote(
    number: int = typer.Argument(..., help="The generation to serve searches."),
    dataset_dir: Path = typer.Option(None, "--dataset", help="Evaluate on this BEIR dataset first (on the server)."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="How much worse (nDCG@10) the candidate may be."),
    modes: str = typer.Option("hybrid", help="Comma-separated modes compared: dense, lexical, hybrid."),
    force: bool = typer.Option(False, "--force", help="Switch without a passing evaluation (recorded as forced)."),
    note: str = typer.Option("", "--note", help="Why; kept on the index pointer beside the verdict."),
    timeout: float = typer.Option(3600, "--timeout", help="Seconds to wait for the candidate to catch up."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Switch searches to generation NUMBER, atomically on every replica. The server refuses unless
    the generation holds a passing evaluation against the active one (`ragmesh index evaluate`, or
    --dataset here), or the switch is forced."""
    admin = connect(data)
    result: dict = {"generation": number}
    try:
        active = _generations(admin).pointer.active
        if dataset_dir is not None and not force:
            verdict = _evaluate(admin, data, number, dataset_dir, tolerance, modes, timeout)
            result["verdict"] = MessageToDict(verdict, preserving_proto_field_name=True)
            if not verdict.passed:
                result.update(promoted=False, note=_verdict_text(verdict))
                if as_json:
                    emit(result)
                else:
                    typer.echo(_verdict_text(verdict), err=True)
                raise typer.Exit(1)
        request = gateway_pb2.PromoteIndexRequest(number=number, expected_active=active, note=note, force=force)
        pointer = admin.promote_index(request).pointer
    except grpc.RpcError as exc:
        fail(exc)
    result.update(promoted=True, note=pointer.note, pointer=_pointer_dict(pointer))
    if as_json:
        emit(result)
    else:
        typer.echo(f"generation {number} is active: {pointer.note}")


@index_app.command("rollback")
def index_rollback(data: Path = DataDir, as_json: bool = JsonOut):
    """Serve the previous generation again."""
    try:
        pointer = connect(data).rollback_index().pointer
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit(_pointer_dict(pointer))
    else:
        typer.echo(f"generation {pointer.active} is active again")


@index_app.command("drop")
def index_drop(number: int = typer.Argument(...), data: Path = DataDir, as_json: bool = JsonOut):
    """Remove a generation that is not active: its engines' data, its state and its stream consumer."""
    try:
        pointer = connect(data).drop_index_generation(number).pointer
    except grpc.RpcError as exc:
        fail(exc)
    if as_json:
        emit(_pointer_dict(pointer))
    else:
        typer.echo(f"generation {number} removed")
