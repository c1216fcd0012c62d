"""The `ragmesh` command."""

import os
import signal
import sys
import threading
from pathlib import Path

import grpc
import typer

from rag.v1 import gateway_pb2
from ragmesh_client import Client
from services.cli import documents, keys, queries
from services.cli.client import ALLOW_PLAINTEXT, connect, tenant_key
from services.cli.index import index_app
from services.cli.local import DEFAULT_PORT_BASE, data_dir
from services.cli.options import DataDir, JsonOut, NullBar, emit, fail

app = typer.Typer(help="ragmesh: retrieval-augmented generation as gRPC services.", no_args_is_help=True)
app.add_typer(documents.docs_app, name="docs")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(index_app, name="index")
app.command()(documents.ingest)
for command in (queries.search, queries.ask, queries.replay, queries.feedback, keys.usage):
    app.command()(command)


@app.callback()
def options(
    allow_plaintext_key: bool = typer.Option(
        False,
        "--allow-plaintext-key",
        help=f"Send the API key without TLS to a gateway on another machine (env {ALLOW_PLAINTEXT}=1).",
    ),
):
    if allow_plaintext_key:
        os.environ[ALLOW_PLAINTEXT] = "1"


@app.command()
def up(
    data: Path = DataDir,
    port_base: int = typer.Option(DEFAULT_PORT_BASE, help="First of the ports used."),
    sync_interval: str = typer.Option(
        "always",
        help="JetStream fsync: 'always' (no acked write lost on "
        "power failure, slower) or a duration like '2m' (NATS default).",
    ),
    llm: str = typer.Option(
        "none",
        "--llm",
        help="'local': also start a local LLM server (llama.cpp, the packaged Qwen2.5 0.5B) and answer with it.",
    ),
):
    """Start NATS and the five services; print `ready` and the gateway address; Ctrl-C stops all."""
    from services.cli.up import LLM_CHOICES, LocalSystem
    from services.cli.welcome import command_name, next_steps

    if llm not in LLM_CHOICES:
        raise typer.BadParameter(f"use one of {', '.join(LLM_CHOICES)}", param_hint="--llm")
    system = LocalSystem(data_dir(data), port_base, sync_interval, llm=llm)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        gateway = system.start()
        typer.echo(f"ragmesh ready: gateway {gateway} (data {system.data})", err=False)
        for line in next_steps(system.data, command_name()):
            typer.echo(line)
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
    qa: Path = typer.Option(
        None,
        "--qa",
        help="Questions with gold answers (JSON lines: _id, question, answers, doc_ids) over this corpus: report "
        "answer correctness, citation precision and faithfulness of the configured provider.",
    ),
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
    admin = connect(data)
    try:
        # Searching another generation than the active one is an operator's.
        role = gateway_pb2.ROLE_OPERATOR if generation else gateway_pb2.ROLE_WRITER
        tenant = evaluate.tenant_for(dataset.name)
        client = connect(data, api_key=tenant_key(admin, data_dir(data), tenant, "ragmesh eval", role))
        show = not as_json and sys.stderr.isatty()
        with (
            typer.progressbar(length=len(dataset.corpus), label="indexing", file=sys.stderr)
            if show
            else NullBar() as bar
        ):
            ingested = evaluate.ingest_corpus(client, dataset, progress=bar.update)
        report = evaluate.evaluate(client, dataset, chosen, generation=generation)
        if answers or unanswerable:
            report["answers"] = _answers(evaluate, admin, data, client, dataset, unanswerable)
        if qa:
            from services.cli import answer_quality

            rows = answer_quality.ask_gold(client, answer_quality.load_questions(qa))
            report["answer_quality"] = {"summary": answer_quality.summary(rows), "questions": rows}
    except grpc.RpcError as exc:
        fail(exc)
    report["ingest"] = ingested
    text = evaluate.markdown(report)
    if "answers" in report:
        text += "\n" + evaluate.answers_markdown(report["answers"])
    if "answer_quality" in report:
        from services.cli import answer_quality

        text += "\n" + answer_quality.markdown([report["answer_quality"]["summary"]])
    if out:
        out.write_text(text)
    if as_json:
        emit(report)
    else:
        typer.echo(text)


def _answers(evaluate, admin: Client, data: Path, client: Client, dataset, unanswerable: Path | None) -> dict:
    """Answerable: the judged queries over the whole corpus. Unanswerable: the same queries over the
    corpus without their relevant documents, and the queries of `unanswerable` if given."""
    parameters = client.ask("calibration probe", no_cache=True).manifest.generation_parameters
    configured = evaluate.Gate(
        float(parameters.get("min_dense_score", "0")),
        float(parameters.get("min_dense_with_agreement", "1")),
        float(parameters.get("min_question_coverage", "1")),
    )
    hidden = evaluate.held_out(dataset)
    hidden_client = connect(data, api_key=tenant_key(admin, data_dir(data), evaluate.tenant_for(hidden.name), "eval"))
    evaluate.ingest_corpus(hidden_client, hidden)
    records = evaluate.ask_all(client, dataset.queries, evaluate.ANSWERABLE)
    records += evaluate.ask_all(hidden_client, hidden.queries, "held-out")
    if unanswerable:
        records += evaluate.ask_all(client, evaluate.load_dataset(unanswerable).queries, "out-of-domain")
    return evaluate.answers_report(records, configured)


@app.command()
def trace(
    trace_id: str = typer.Argument("", help="Trace id (32 hex digits)."),
    last: bool = typer.Option(False, "--last", help="The latest Ask."),
    data: Path = DataDir,
    as_json: bool = JsonOut,
):
    """Print a trace recorded by `ragmesh up` as a waterfall (development; production uses Jaeger)."""
    from services.cli import traces

    no_trace = "give a trace id or --last (no Ask recorded yet?)"
    if not (trace_id or last):
        raise typer.BadParameter(no_trace)
    # One look at the file finds both which trace is wanted and its spans.
    found = traces.wait_for(
        data_dir(data) / "traces",
        lambda spans: traces.trace_spans(spans, traces.last_ask(spans) if last else trace_id),
    )
    if not found and last:
        raise typer.BadParameter(no_trace)
    if not found:
        typer.echo(f"no spans for trace {trace_id} (spans are flushed every 0.5 s)", err=True)
        raise typer.Exit(1)
    trace_id = found[0]["trace_id"]
    if as_json:
        keys = ("trace_id", "span_id", "parent_span_id", "service", "name", "start", "duration_ms", "attributes")
        emit({"trace_id": trace_id, "spans": [{k: s[k] for k in keys} for s in found]})
    else:
        typer.echo(traces.waterfall(found))
