"""How the command line reaches the gateway: through ragmesh_client, to the address and with the
key from the environment (RAGMESH_ADDR, RAGMESH_API_KEY) or the data dir of `ragmesh up`, over
TLS when RAGMESH_TLS_CA_FILE is set."""

import json
from pathlib import Path

import click

from rag.v1 import gateway_pb2
from ragmesh_client import TLS, Client, PlaintextRefused
from ragmesh_client.channel import ALLOW_PLAINTEXT
from services.cli.local import client_target, data_dir
from services.cli.private import write_private

__all__ = ["ALLOW_PLAINTEXT", "connect", "client_for", "tenant_key"]

TIMEOUT_S = 60.0  # the default deadline of one command's calls (uploads and replays take longer)


def connect(data: Path | None, api_key: str | None = None, addr: str | None = None) -> Client:
    """A client of the gateway of `ragmesh up` (or the one the environment names). An API key goes
    in plaintext only to this machine unless allowed; a refusal is the command's error."""
    default_addr, key = client_target(data_dir(data))
    try:
        return Client(addr or default_addr, api_key or key, tls=TLS.from_env(), timeout=TIMEOUT_S)
    except PlaintextRefused as exc:
        raise click.ClickException(str(exc)) from None


def tenant_key(
    admin: Client, data: Path, tenant: str, purpose: str = "ragmesh cli", role: int = gateway_pb2.ROLE_WRITER
) -> str:
    """A key of `role` for `tenant`, made once with the operator key and kept (owner-only) in the data
    dir. Evaluations that search other index generations than the active one need an operator's."""
    path = data / "tenant-keys.json"
    keys = json.loads(path.read_text()) if path.exists() else {}
    name = tenant if role == gateway_pb2.ROLE_WRITER else f"{tenant}/{gateway_pb2.Role.Name(role)}"
    if name not in keys:
        keys[name] = admin.create_api_key(tenant, role, description=purpose).api_key
        write_private(path, json.dumps(keys))
    return keys[name]


def client_for(data: Path | None, tenant: str | None) -> Client:
    """The default client, or one acting for another tenant (needs the operator key of `ragmesh up`)."""
    if not tenant:
        return connect(data)
    return connect(data, api_key=tenant_key(connect(data), data_dir(data), tenant))
