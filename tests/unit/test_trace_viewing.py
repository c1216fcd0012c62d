"""`ragmesh trace` reads spans the services' exporters append to a file every 0.5 s: a trace asked
for right after its Ask is found once it lands, and a line being appended is never half read."""

import json
import threading
import time

from typer.testing import CliRunner

from services.cli import traces
from services.cli.main import app


def span(trace_id: str, name: str, start: float) -> dict:
    return {
        "trace_id": trace_id,
        "span_id": "ab" * 8,
        "parent_span_id": "",
        "service": "gateway",
        "name": name,
        "kind": "server",
        "start": start,
        "duration_ms": 12.5,
        "status": 0,
        "attributes": {},
        "links": [],
    }


def test_a_line_still_being_appended_is_left_for_the_next_look(tmp_path):
    whole = json.dumps(span("1" * 32, "rag.v1.GatewayService/Ask", 1.0))
    (tmp_path / "spans.jsonl").write_text(whole + "\n" + whole[:40])
    assert [s["trace_id"] for s in traces.load_spans(tmp_path)] == ["1" * 32]


def test_trace_last_finds_an_ask_whose_spans_land_after_the_command_starts(tmp_path):
    folder = tmp_path / "traces"
    folder.mkdir()
    (folder / "spans.jsonl").write_text("")

    def export_later():
        time.sleep(0.8)
        with open(folder / "spans.jsonl", "a") as f:
            f.write(json.dumps(span("2" * 32, "rag.v1.GatewayService/Ask", 2.0)) + "\n")

    exporter = threading.Thread(target=export_later)
    exporter.start()
    result = CliRunner().invoke(app, ["trace", "--last", "--json", "--data-dir", str(tmp_path)])
    exporter.join()
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["trace_id"] == "2" * 32
    assert [s["name"] for s in shown["spans"]] == ["rag.v1.GatewayService/Ask"]


def test_trace_last_with_no_ask_at_all_still_says_so(tmp_path):
    (tmp_path / "traces").mkdir()
    result = CliRunner().invoke(app, ["trace", "--last", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no Ask recorded yet" in result.output
