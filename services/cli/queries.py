"""`ragmesh search`, `ask`, `replay` and `feedback`."""

from pathlib import Path

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from rag.v1 import types_pb2
from services.cli.client import client_for, connect
from services.cli.options import DataDir, JsonOut, TenantOpt, emit, fail, status_name


def hit_dict(hit: types_pb2.Hit) -> dict:
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
    filters = {}
    for item in where or []:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise typer.BadParameter(f"--where {item!r}: use KEY=VALUE[,VALUE...]")
        filters[key] = values.split(",")
    try:
        response = client.search(query, top_k=top_k, where=filters, since=since, until=until, fusion=params)
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
                "hits": [hit_dict(h) for h in response.hits],
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


def ask(
    question: str,
    top_k: int = typer.Option(0, "--top-k"),
    conversation: str = typer.Option(
        "",
        "--conversation",
        help="Conversation id (any name): follow-ups are read with its earlier turns, which ragmesh keeps.",
    ),
    data: Path = DataDir,
    tenant: str = TenantOpt,
    as_json: bool = JsonOut,
):
    """Ask a question: a cited answer from the indexed documents, or an abstention."""
    client = client_for(data, tenant)
    final = None
    try:
        for message in client.ask_stream(question, top_k=top_k, conversation_id=conversation):
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
        "notes": [status_name(types_pb2.AnswerNote, n, "ANSWER_NOTE_") for n in final.notes],
        "rewritten_query": m.rewritten_query,
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
        for line in citation_lines(final.citations):
            typer.echo(line)
    if m.rewritten_query:
        typer.echo(f"searched as: {m.rewritten_query}")
    for note in result["notes"]:
        typer.echo(f"note: {note.replace('_', ' ')}")
    typer.echo(f"confidence {final.confidence:.2f}; query {m.query_id}; watermark {m.index_watermark}")


def citation_lines(citations) -> list[str]:
    """One line per source, however many sentences cite it."""
    lines, seen = [], set()
    for c in citations:
        if (c.source_number, c.chunk_id) not in seen:
            seen.add((c.source_number, c.chunk_id))
            lines.append(f"  [{c.source_number}] {c.doc_id}  chunk {c.chunk_id}")
    return lines


def replay(query_id: str, data: Path = DataDir, as_json: bool = JsonOut):
    """Re-run a logged Ask; show what changed (retrieved set, ranks, answer, status) and why."""
    try:
        response = connect(data).replay(query_id)
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


def feedback(
    query_id: str,
    rating: int = typer.Option(..., help="-1 bad, 0 neutral, 1 good"),
    comment: str = typer.Option(""),
    data: Path = DataDir,
):
    """Rate an answer; stored with its audit record."""
    try:
        connect(data).feedback(query_id, rating, comment)
    except grpc.RpcError as exc:
        fail(exc)
    typer.echo(f"feedback stored for {query_id}")
