"""The local LLM's speed on real prompts: `python -m benchmarks.bench_llm [--questions 10]`.

Against a running `ragmesh up --llm local` (RAGMESH_DATA_DIR) with dbpedia-5k in its evaluation
tenant (`ragmesh eval` puts it there): for each of the first dbpedia-qa questions, the hits are
searched as Ask searches them and the prompt built as generate builds it under `--llm local`'s
settings, then streamed straight to the LLM server's /v1/chat/completions. Reports time to first
token and whole-answer time as the client sees them, and llama.cpp's own timings: prompt tokens
read (past its prompt cache) and generated, each per second. Prints one JSON line per question and
the medians and ranges.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx

from rag.v1 import gateway_pb2
from services.cli import evaluate
from services.cli.client import connect, tenant_key
from services.cli.local import client_target, data_dir
from services.cli.up import LOCAL_LLM_GENERATE
from services.common.tokenizer import load_tokenizer, token_counter
from services.generate.prompt import build_prompt

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "datasets" / "dbpedia-qa" / "questions.jsonl"
LLM_PORT_OFFSET = 6  # the gateway is the port base + 1, the LLM + 7


def stream(url: str, messages: list[dict], max_tokens: int) -> dict:
    body = {"model": "local", "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started, first, timings, text = time.perf_counter(), None, {}, ""
    with httpx.stream("POST", url, json=body, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            timings = event.get("timings") or timings
            for choice in event.get("choices", []):
                if (choice.get("delta") or {}).get("content"):
                    first = first or time.perf_counter() - started
                    text += choice["delta"]["content"]
    total = time.perf_counter() - started
    return {
        "ttft_s": round(first or total, 2),
        "total_s": round(total, 2),
        "prompt_tokens": timings.get("prompt_n"),
        "cached_tokens": timings.get("cache_n"),
        "prompt_tokens_per_s": round(timings.get("prompt_per_second", 0.0), 1),
        "completion_tokens": timings.get("predicted_n"),
        "completion_tokens_per_s": round(timings.get("predicted_per_second", 0.0), 1),
        "answer": text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    data = data_dir(None)
    host, port = client_target(data)[0].rsplit(":", 1)
    url = f"http://{host}:{int(port) + LLM_PORT_OFFSET}/v1/chat/completions"
    client = connect(data, api_key=tenant_key(connect(data), data, evaluate.tenant_for("dbpedia-5k"), "bench-llm"))
    count = token_counter(load_tokenizer(None, 256))
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    rows = []
    for line in [x for x in lines if x.strip()][: args.questions]:
        question = json.loads(line)["question"]
        hits = list(client.call("Search", gateway_pb2.SearchRequest(query=question, top_k=8)).hits)
        prompt = build_prompt(
            question,
            hits,
            int(LOCAL_LLM_GENERATE["RAGMESH_PROMPT_TOKEN_BUDGET"]),
            count,
            3,
            int(LOCAL_LLM_GENERATE["RAGMESH_LLM_MAX_SOURCES"]),
            int(LOCAL_LLM_GENERATE["RAGMESH_LLM_SOURCE_TOKENS"]),
        )
        row = {"question": question, **stream(url, prompt.messages, int(LOCAL_LLM_GENERATE["RAGMESH_LLM_MAX_TOKENS"]))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for key in ("ttft_s", "total_s", "prompt_tokens", "prompt_tokens_per_s", "completion_tokens_per_s"):
        values = [r[key] for r in rows if r[key] is not None]
        print(f"{key}: median {statistics.median(values)}, {min(values)}–{max(values)}")


if __name__ == "__main__":
    main()
