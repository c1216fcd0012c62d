"""Local trace viewing without Jaeger: an OTLP/gRPC receiver that stores spans as JSON lines, and
the waterfall `ragmesh trace` prints. A development convenience; production sends OTLP to an
OpenTelemetry Collector and reads traces in Jaeger."""

import json
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(v: common_pb2.AnyValue):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict]:
    out = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "service": resource.get("service.name", ""),
                        "name": span.name,
                        "kind": KINDS.get(span.kind, str(span.kind)),
                        "start": span.start_time_unix_nano / 1e9,
                        "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
                        "status": span.status.code,
                        "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                        "links": [link.trace_id.hex() for link in span.links],
                    }
                )
    return out


class SpanStore(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def Export(self, request, context):
        lines = "".join(json.dumps(s) + "\n" for s in spans_of(request))
        with self.lock, open(self.path, "a") as f:
            f.write(lines)
        return trace_service_pb2.ExportTraceServiceResponse()


def start_receiver(folder: Path, port: int) -> grpc.Server:
    folder.mkdir(parents=True, exist_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(SpanStore(folder / "spans.jsonl"), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise RuntimeError(f"cannot bind the trace receiver to port {port}")
    server.start()
    return server


def load_spans(folder: Path) -> list[dict]:
    path = folder / "spans.jsonl"
    if not path.exists():
        return []
    # A line still being appended has no newline yet: it is read on the next look.
    complete = path.read_text().rpartition("\n")[0]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def wait_for(folder: Path, pick, seconds: float = 3.0):
    """What `pick(spans)` finds, looking again while the services' exporters flush (every 0.5 s):
    a trace asked for right after its request may not be on disk yet."""
    deadline = time.monotonic() + seconds
    while True:
        found = pick(load_spans(folder))
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def trace_spans(spans: list[dict], trace_id: str) -> list[dict]:
    return sorted((s for s in spans if s["trace_id"] == trace_id), key=lambda s: s["start"])


def last_ask(spans: list[dict]) -> str:
    asks = [s for s in spans if s["name"].endswith("GatewayService/Ask") and s["kind"] == "server"]
    return max(asks, key=lambda s: s["start"])["trace_id"] if asks else ""


KEY_ATTRIBUTES = (
    "rag.tenant",
    "rag.doc_id",
    "rag.version",
    "rag.hits",
    "rag.index.watermark",
    "rag.batch.size",
    "rag.lane",
    "rag.tokens",
    "rag.chunks",
    "rag.fusion.method",
    "rag.fusion.reason",
    "rag.rerank.status",
    "rag.answer.status",
    "rpc.grpc.status_code",
)


def waterfall(spans: list[dict], width: int = 40) -> str:
    """Spans in tree order with start offset, duration and a bar on a shared time axis."""
    if not spans:
        return "no spans"
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str, list[dict]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in by_id else ""
        children.setdefault(parent, []).append(s)
    start = min(s["start"] for s in spans)
    total = max(s["start"] + s["duration_ms"] / 1000 for s in spans) - start or 1e-9
    lines = [f"trace {spans[0]['trace_id']}  {total * 1000:.1f} ms  {len(spans)} spans"]

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x["start"]):
            offset = s["start"] - start
            left = int(offset / total * width)
            bar = " " * left + "█" * max(1, int(s["duration_ms"] / 1000 / total * width))
            attrs = " ".join(
                f"{k.removeprefix('rag.')}={s['attributes'][k]}" for k in KEY_ATTRIBUTES if k in s["attributes"]
            )
            label = ("  " * depth + s["name"])[:48]
            lines.append(
                f"{s['service']:>9} {label:<48} {offset * 1000:8.1f} {s['duration_ms']:8.1f} ms "
                f"|{bar:<{width}}| {attrs}"
            )
            walk(s["span_id"], depth + 1)

    walk("", 0)
    return "\n".join(lines)
