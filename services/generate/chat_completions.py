"""Client of an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, TGI, llama.cpp).

Streams over server-sent events, retries 429 and 5xx with backoff only before the first delta
(a half-streamed answer cannot be retried invisibly), and honours the caller's deadline.
"""

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

RETRYABLE = {429, 500, 502, 503, 504}


class ProviderError(Exception):
    """The endpoint failed or answered something that is not the chat-completions format."""


@dataclass
class Delta:
    text: str


@dataclass
class Finished:
    reason: str
    prompt_tokens: int | None
    completion_tokens: int | None


class ChatCompletions:
    def __init__(
        self,
        url: str,
        model: str,
        api_key: str = "",
        timeout_seconds: float = 60.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        stream: bool = True,
    ) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.stream = model, stream
        self.timeout_seconds, self.max_retries, self.backoff_seconds = timeout_seconds, max_retries, backoff_seconds
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(headers=headers, timeout=timeout_seconds)

    async def close(self) -> None:
        await self.http.aclose()

    async def complete(
        self, messages: list[dict], max_tokens: int, temperature: float, deadline: float | None = None
    ) -> AsyncIterator[Delta | Finished]:
        """Deltas of the answer, then one Finished. `deadline` is a time.monotonic() instant."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if self.stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        attempt = 0
        while True:
            started = False
            try:
                async with asyncio.timeout_at(_loop_deadline(deadline)):
                    async for event in self._once(body, deadline):
                        started = True
                        yield event
                return
            except _Retryable as exc:
                attempt += 1
                if started or attempt > self.max_retries:
                    raise ProviderError(str(exc)) from None
                delay = exc.retry_after or self.backoff_seconds * 2 ** (attempt - 1) * (0.5 + random.random())
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise ProviderError(f"{exc}; no time left to retry") from None
                await asyncio.sleep(delay)

    async def _once(self, body: dict, deadline: float | None) -> AsyncIterator[Delta | Finished]:
        timeout = self.timeout_seconds
        if deadline is not None:
            timeout = max(0.001, min(timeout, deadline - time.monotonic()))
        try:
            async with self.http.stream("POST", self.url, json=body, timeout=timeout) as response:
                if response.status_code != 200:
                    detail = (await response.aread())[:300].decode("utf-8", "replace")
                    message = f"chat completions answered HTTP {response.status_code}: {detail}"
                    if response.status_code in RETRYABLE:
                        raise _Retryable(message, _retry_after(response.headers.get("retry-after")))
                    raise ProviderError(message)
                if self.stream:
                    async for event in _server_sent_events(response):
                        yield event
                else:
                    for event in from_completion(_json(await response.aread())):
                        yield event
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise _Retryable(f"chat completions unreachable: {type(exc).__name__} {exc}", None) from None


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _loop_deadline(deadline: float | None) -> float | None:
    """asyncio.timeout_at wants the loop's clock; ours is time.monotonic (the same clock on CPython)."""
    if deadline is None:
        return None
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 30.0) if value else None
    except ValueError:
        return None


def _json(raw: bytes | str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ProviderError(f"malformed chunk from chat completions: {str(raw)[:120]!r}") from None
    if not isinstance(value, dict):
        raise ProviderError(f"chat completions sent {type(value).__name__}, not an object")
    return value


def from_completion(body: dict) -> list[Delta | Finished]:
    """A whole (non-streamed) completion as the same events a stream gives."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise ProviderError("chat completion without choices[0].message.content") from None
    usage = body.get("usage") or {}
    finished = Finished(
        choice.get("finish_reason") or "stop", usage.get("prompt_tokens"), usage.get("completion_tokens")
    )
    return [Delta(text), finished] if text else [finished]


async def _server_sent_events(response: httpx.Response) -> AsyncIterator[Delta | Finished]:
    reason, usage, done = "", {}, False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # comments, event names and blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        chunk = _json(data)
        if "error" in chunk:
            raise ProviderError(f"chat completions stream error: {str(chunk['error'])[:300]}")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield Delta(text)
            reason = choice.get("finish_reason") or reason
    if not done and not reason:
        raise ProviderError("chat completions stream ended before [DONE]")
    yield Finished(reason or "stop", usage.get("prompt_tokens"), usage.get("completion_tokens"))
