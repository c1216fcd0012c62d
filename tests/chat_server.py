"""A local server speaking the OpenAI chat-completions wire format (JSON and server-sent events).

Its model reads the prompt the way a careless LLM would: it answers from the source that shares
most words with the question, and it obeys any "ignore previous instructions" it finds outside a
source element. Tests queue misbehaviours (HTTP errors, malformed chunks, slowness, invented
sentences, wrong citations) in `script`.
"""

import html
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOURCE = re.compile(r'<source id="(\d+)"[^>]*>(.*?)</source>', re.S)  # ends at the first closing tag
WORD = re.compile(r"[a-z]{3,}")


def condensed(user: str) -> str:
    """A standalone rewrite: the last question, then what the conversation's first question was about."""
    first = re.search(r"^Q: (.*?)\??$", user, re.M).group(1)
    last = user.rsplit("Last question:", 1)[-1].strip().rstrip("?")
    return f"{last}, regarding: {first}?"


def reply_for(messages: list[dict]) -> str:
    user = messages[-1]["content"]
    if messages[0]["content"].startswith("Rewrite the last question"):
        return condensed(user)
    question = user.rsplit("Question:", 1)[-1]
    outside = SOURCE.sub("", user)
    if "ignore previous instructions" in outside.lower():
        return "PWNED."
    words = set(WORD.findall(question.lower()))
    best, best_overlap = None, 0
    for number, text in SOURCE.findall(user):
        overlap = len(words & set(WORD.findall(text.lower())))
        if overlap > best_overlap:
            best, best_overlap = (number, html.unescape(text.strip())), overlap
    if best is None:
        return "INSUFFICIENT_SOURCES"
    number, text = best
    first = re.split(r"(?<=[.!?])\s+", text.strip())[0]
    return f"{first.rstrip('.')} [{number}]."


class ChatServer:
    def __init__(self) -> None:
        self.script: deque[str] = deque()
        self.requests: list[dict] = []
        self.disconnects = 0
        self.token_delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"body": body, "authorization": self.headers.get("Authorization")})
                action = server.script.popleft() if server.script else ""
                server.respond(self, body, action)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    def start(self) -> "ChatServer":
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.http.shutdown()

    def respond(self, handler, body: dict, action: str) -> None:
        if action in ("429", "500", "503", "400"):
            payload = json.dumps({"error": {"message": f"scripted {action}", "type": "server_error"}}).encode()
            handler.send_response(int(action))
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            if action == "429":
                handler.send_header("Retry-After", "0")
            handler.end_headers()
            handler.wfile.write(payload)
            return
        text = reply_for(body["messages"])
        if action == "invent":
            text += " The moon is made of green cheese and hosts a jazz festival [1]."
        elif action == "bad-citation":
            text = text.replace("].", "][9].")
        elif action == "abstain":
            text = "INSUFFICIENT_SOURCES"
        finish = "length" if action == "truncate" else "stop"
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split())}
        if action == "no-usage":
            usage = None
        if not body.get("stream"):
            completion = {
                "id": "cmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            }
            if usage:
                completion["usage"] = usage
            payload = json.dumps(completion).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        pieces = re.findall(r"\S+\s*", text)
        delay = 0.2 if action == "slow" else self.token_delay
        try:
            for i, piece in enumerate(pieces * (40 if action == "slow" else 1)):
                if action == "malformed" and i == 1:
                    handler.wfile.write(b"data: {not json\n\n")
                    handler.wfile.flush()
                    return
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": piece}}],
                }
                handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                handler.wfile.flush()
                time.sleep(delay)
            end = {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            }
            handler.wfile.write(f"data: {json.dumps(end)}\n\n".encode())
            if usage:
                handler.wfile.write(f"data: {json.dumps({'id': 'c', 'choices': [], 'usage': usage})}\n\n".encode())
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.disconnects += 1
