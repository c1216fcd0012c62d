"""When a failed call is tried again, and how long to wait first.

A call's deadline covers all its attempts: no wait runs past it, and each attempt is given what is
left. RESOURCE_EXHAUSTED with a `retry-after-ms` hint (a rate limit, a full queue) is retried after
the hint, with jitter so that callers refused together do not return together; a long hint (a spent
budget resets hours later) or none is final. UNAVAILABLE (a service starting, restarting or out of
reach) is retried with exponential backoff, for calls that may run twice."""

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc


@dataclass(frozen=True)
class Retry:
    """One wait before another attempt (what `RetryPolicy.on_retry` is told)."""

    method: str
    code: grpc.StatusCode
    attempt: int  # the attempt that failed, from 1
    delay_s: float


@dataclass(frozen=True)
class RetryPolicy:
    longest_hint_s: float = 10.0  # a hint longer than this is not waited for
    unavailable_attempts: int = 5  # attempts in all when the gateway is UNAVAILABLE
    backoff_s: float = 0.1  # first wait after UNAVAILABLE, doubled each time
    longest_backoff_s: float = 2.0
    jitter: float = 1.0  # waits are stretched by up to this share, at random
    on_retry: Callable[[Retry], None] | None = field(default=None, compare=False)

    def delay(
        self, code: grpc.StatusCode, hint_ms: str | None, attempt: int, remaining_s: float | None, idempotent: bool
    ) -> float | None:
        """Seconds to wait before trying again after attempt number `attempt` failed with `code`, or
        None when the failure is final."""
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            if hint_ms is None:
                return None
            base = int(hint_ms) / 1000
            if base > self.longest_hint_s:
                return None
            base = max(base, 0.02)
        elif code == grpc.StatusCode.UNAVAILABLE and idempotent and attempt < self.unavailable_attempts:
            base = min(self.backoff_s * 2 ** (attempt - 1), self.longest_backoff_s)
        else:
            return None
        wait = base * (1 + self.jitter * random.random())
        if remaining_s is not None and wait >= remaining_s:
            return None  # the deadline comes first: the caller hears the refusal now
        return wait


def hint(error: grpc.RpcError) -> str | None:
    """The `retry-after-ms` the server sent with a refusal, if any."""
    try:
        return dict(error.trailing_metadata() or ()).get("retry-after-ms")
    except Exception:
        return None


# Calls that must not run twice when an attempt's fate is unknown (UNAVAILABLE may come after the
# gateway did the work): a second key, a second rebuild, a second re-queue.
NOT_REPEATABLE = frozenset({"CreateApiKey", "RebuildIndex", "RetryDocument"})
