"""Options and output shared by the `ragmesh` commands."""

import json

import grpc
import typer

DataDir = typer.Option(None, "--data-dir", help="State folder of `ragmesh up` (env RAGMESH_DATA_DIR).")
JsonOut = typer.Option(False, "--json", help="One JSON object on stdout, for scripts.")


def fail(exc: grpc.RpcError) -> None:
    typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
    raise typer.Exit(2)


def emit(obj) -> None:
    typer.echo(json.dumps(obj, indent=None, sort_keys=False))
