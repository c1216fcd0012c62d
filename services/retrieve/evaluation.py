"""The promotion gate's evaluation, run by retrieve itself: judged queries searched in a candidate
generation and in the active one, nDCG@10 per mode, and a verdict kept on the candidate's record.
A promotion needs a passing verdict against the generation active at that moment (or an
operator's force, recorded as such); a note a client writes proves nothing."""

import hashlib
import time

import grpc

from rag.v1 import embed_pb2, retrieve_pb2
from services.common.metrics import MODES, ranked_run, scores
from services.retrieve.backends.base import SearchScope
from services.retrieve.generation import Generation, GenerationError
from services.retrieve.search import auto_policy, hybrid_search, resolve_fusion

MAX_QUERIES = 5000
EMBED_BATCH = 64
TOP_K = 10


def problem(request: retrieve_pb2.EvaluateGenerationRequest) -> str:
    if not request.tenant:
        return "name the tenant whose documents the queries are judged against"
    if not 1 <= len(request.queries) <= MAX_QUERIES:
        return f"give 1-{MAX_QUERIES} judged queries; got {len(request.queries)}"
    unknown = [m for m in request.modes if m not in MODES]
    if unknown:
        return f"unknown modes {unknown}; use {', '.join(MODES)}"
    empty = [q.id for q in request.queries if not q.text.strip() or not q.relevant]
    if empty:
        return f"{len(empty)} queries have no text or no judgements (e.g. {empty[0]!r})"
    return ""


def dataset_digest(request: retrieve_pb2.EvaluateGenerationRequest) -> str:
    digest = hashlib.sha256()
    for query in sorted(request.queries, key=lambda q: q.id):
        digest.update(query.id.encode() + b"\x1f" + query.text.encode() + b"\x1f")
        for doc, grade in sorted(query.relevant.items()):
            digest.update(f"{doc}={grade};".encode())
    return digest.hexdigest()


async def embed_all(embed, texts: list[str], model_id: str = "") -> tuple[list[list[float]], str]:
    """The texts' vectors from model `model_id` ("" = the embed service's default), and its id."""
    vectors, answered = [], ""
    for start in range(0, len(texts), EMBED_BATCH):
        asked = embed_pb2.EmbedRequest(
            texts=texts[start : start + EMBED_BATCH], lane=embed_pb2.EMBED_LANE_BULK, model_id=model_id
        )
        try:
            reply = await embed.Embed(asked, timeout=120)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "not served" in (exc.details() or ""):
                raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, exc.details()) from None
            raise GenerationError(exc.code(), exc.details()) from None
        vectors += [list(v.values) for v in reply.vectors]
        answered = reply.model_id
    return vectors, answered


async def ndcg(generation: Generation, request, vectors, mode: str, settings) -> float:
    fusion = resolve_fusion(MODES[mode], settings, TOP_K)
    fusion.max_per_document = 1
    scope = SearchScope(request.tenant, tuple(request.principals))
    run = {}
    for query, vector in zip(request.queries, vectors, strict=True):
        result = await hybrid_search(
            generation.dense, generation.lexical, query.text, vector, scope, fusion, TOP_K, auto_policy(settings)
        )
        run[query.id] = ranked_run([f.chunk.doc_id for f in result.found])
    qrels = {q.id: dict(q.relevant) for q in request.queries}
    return scores(qrels, run)["ndcg@10"]


def judge(scores: list[retrieve_pb2.ModeScore], tolerance: float, dataset: str, queries: int) -> tuple[bool, str]:
    """Whether the candidate may replace the active generation: in no mode may its nDCG@10 be lower
    than the active one's by more than `tolerance` (a negative tolerance demands a gain)."""
    worse = [s for s in scores if s.candidate_ndcg < s.baseline_ndcg - tolerance]
    lines = [
        f"{s.mode} ndcg@10 {s.candidate_ndcg:.4f} vs {s.baseline_ndcg:.4f}" + (" (worse)" if s in worse else "")
        for s in scores
    ]
    summary = f"{dataset or 'judged queries'} ({queries} queries): " + "; ".join(lines)
    return not worse, f"{summary}; tolerance {tolerance}"


async def evaluate(control, embed, settings, request) -> retrieve_pb2.Verdict:
    """Evaluate generation `request.number` against the active one; the verdict, also recorded."""
    reason = problem(request)
    if reason:
        raise GenerationError(grpc.StatusCode.INVALID_ARGUMENT, reason)
    candidate, baseline = control.g.searchable(request.number), control.g.searchable(0)
    if candidate.number == baseline.number:
        raise GenerationError(grpc.StatusCode.FAILED_PRECONDITION, f"generation {candidate.number} is the active one")
    # Each generation's queries embedded by its own model.
    texts, vectors = [q.text for q in request.queries], {}
    for generation in (candidate, baseline):
        model = generation.model_id
        if model not in vectors:
            vectors[model], answered = await embed_all(embed, texts, model)
            if model and answered != model:
                raise GenerationError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"generation {generation.number} holds vectors of {model}; queries are embedded by {answered}",
                )
    modes = list(request.modes) or ["hybrid"]
    verdict = retrieve_pb2.Verdict(
        candidate=candidate.number,
        baseline=baseline.number,
        dataset=request.dataset,
        dataset_sha256=dataset_digest(request),
        queries=len(request.queries),
        tolerance=request.tolerance,
        candidate_watermark=candidate.state.watermark,
        created_unix_ms=int(time.time() * 1000),
    )
    for mode in modes:
        after = await ndcg(candidate, request, vectors[candidate.model_id], mode, settings)
        before = await ndcg(baseline, request, vectors[baseline.model_id], mode, settings)
        verdict.scores.add(mode=mode, candidate_ndcg=after, baseline_ndcg=before)
    verdict.passed, verdict.summary = judge(list(verdict.scores), request.tolerance, request.dataset, verdict.queries)
    await control.record_verdict(candidate.number, verdict)
    return verdict
