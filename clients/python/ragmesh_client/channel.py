"""Channels to the gateway: plaintext only to this machine unless allowed, TLS (and a client
certificate for mutual TLS) from PEM files."""

import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc

MESSAGE_LIMIT = 64 << 20
OPTIONS = [("grpc.max_send_message_length", MESSAGE_LIMIT), ("grpc.max_receive_message_length", MESSAGE_LIMIT)]
ALLOW_PLAINTEXT = "RAGMESH_ALLOW_PLAINTEXT_KEY"


class PlaintextRefused(ValueError):
    """An API key would travel unencrypted to another machine."""


@dataclass(frozen=True)
class TLS:
    """Verify the gateway with `ca_file`; present `cert_file`/`key_file` when it asks for a client
    certificate (mutual TLS)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_env(cls) -> "TLS | None":
        """RAGMESH_TLS_CA_FILE (and RAGMESH_TLS_CERT_FILE, RAGMESH_TLS_KEY_FILE), or None."""
        ca = os.environ.get("RAGMESH_TLS_CA_FILE")
        if not ca:
            return None
        cert, key = os.environ.get("RAGMESH_TLS_CERT_FILE"), os.environ.get("RAGMESH_TLS_KEY_FILE")
        return cls(Path(ca), Path(cert) if cert else None, Path(key) if key else None)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(),
            private_key=self.key_file.read_bytes() if self.key_file else None,
            certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
        )


def on_this_machine(target: str) -> bool:
    """Whether every address the gateway's host name resolves to is a loopback one (or a socket file)."""
    if target.startswith("unix:"):
        return True
    host = target.removeprefix("dns:///").rsplit(":", 1)[0].strip("[]")
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(resolved) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in resolved)


def plaintext_allowed() -> bool:
    return os.environ.get(ALLOW_PLAINTEXT, "").lower() in ("1", "true", "yes")


def check_plaintext(target: str, api_key: str, tls: bool, allow: bool | None = None) -> None:
    """An API key travels in plaintext only to this machine; elsewhere only when allowed, and loudly."""
    if tls or not api_key or on_this_machine(target):
        return
    if plaintext_allowed() if allow is None else allow:
        print(f"WARNING: sending the API key in plaintext to {target}: anyone on the way can read it", file=sys.stderr)
        return
    raise PlaintextRefused(
        f"refusing to send the API key in plaintext to {target} (not this machine): set RAGMESH_TLS_CA_FILE "
        f"to use TLS, or pass --allow-plaintext-key ({ALLOW_PLAINTEXT}=1) to send it anyway"
    )


def sync_channel(target: str, api_key: str = "", tls: TLS | None = None, allow_plaintext: bool | None = None):
    check_plaintext(target, api_key, tls is not None, allow_plaintext)
    if tls is None:
        return grpc.insecure_channel(target, options=OPTIONS)
    return grpc.secure_channel(target, tls.credentials(), options=OPTIONS)


def aio_channel(target: str, api_key: str = "", tls: TLS | None = None, allow_plaintext: bool | None = None):
    check_plaintext(target, api_key, tls is not None, allow_plaintext)
    if tls is None:
        return grpc.aio.insecure_channel(target, options=OPTIONS)
    return grpc.aio.secure_channel(target, tls.credentials(), options=OPTIONS)
