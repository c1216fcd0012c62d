"""A refused RPC as an exception: raised anywhere in a handler, the interceptor answers it with its
status and message (and a `retry-after-ms` trailer when it has one)."""

import grpc


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after_ms = code, message, retry_after_ms
