"""TLS and mutual TLS for gRPC, from PEM files (mounted from Kubernetes Secrets)."""

import grpc

from services.common.config import ServiceSettings


def _read(path) -> bytes | None:
    return path.read_bytes() if path else None


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """None without a certificate (plaintext); with a CA and tls_client_auth, clients must present a
    certificate that CA signed."""
    if not settings.tls_cert_file:
        return None
    if not settings.tls_key_file:
        raise SystemExit("RAGMESH_TLS_CERT_FILE needs RAGMESH_TLS_KEY_FILE")
    ca = _read(settings.tls_ca_file)
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=bool(ca) and settings.tls_client_auth,
    )


def channel_credentials(settings: ServiceSettings | None) -> grpc.ChannelCredentials | None:
    """None without a CA (plaintext); else verify the server with the CA and present this service's
    certificate, if it has one, for mTLS."""
    if settings is None or not settings.tls_ca_file:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=settings.tls_ca_file.read_bytes(),
        private_key=_read(settings.tls_key_file),
        certificate_chain=_read(settings.tls_cert_file),
    )
