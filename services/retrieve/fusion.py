"""Pure rank fusion: two ranked candidate lists in, one ranking out, every score kept.

Methods: reciprocal rank fusion (optionally weighted), convex combinations of min-max or
z-score normalised scores, and either retriever alone. A candidate missing from one list gets
that list's lowest normalised score (it ranked below everything the retriever returned).
`auto` decides per query (services/retrieve/adaptive.py) which of these to apply, and how.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from services.retrieve.backends.base import EngineHit

METHODS = ("auto", "rrf", "minmax", "zscore", "dense", "lexical")


@dataclass(slots=True)
class FusedHit:
    chunk_id: str
    hit: EngineHit
    score: float = 0.0
    dense_score: float = 0.0
    dense_rank: int = 0
    lexical_score: float = 0.0
    lexical_rank: int = 0
    sources: set[str] = field(default_factory=set)


def _collect(dense: list[EngineHit], lexical: list[EngineHit]) -> dict[str, FusedHit]:
    fused: dict[str, FusedHit] = {}
    for rank, hit in enumerate(dense, start=1):
        entry = fused.get(hit.chunk_id)
        if entry is None:
            entry = fused[hit.chunk_id] = FusedHit(hit.chunk_id, hit)
        entry.dense_score, entry.dense_rank = hit.score, rank
        entry.sources.add("dense")
    for rank, hit in enumerate(lexical, start=1):
        entry = fused.get(hit.chunk_id)
        if entry is None:
            entry = fused[hit.chunk_id] = FusedHit(hit.chunk_id, hit)
        elif hit.chunk is not None and entry.hit.chunk is None:
            entry.hit = hit  # the whole chunk is at hand: nothing to fetch for it
        entry.lexical_score, entry.lexical_rank = hit.score, rank
        entry.sources.add("lexical")
    return fused


def _ranked(fused: dict[str, FusedHit], include: Callable[[FusedHit], bool] = lambda f: True) -> list[FusedHit]:
    return sorted((f for f in fused.values() if include(f)), key=lambda f: (-f.score, f.chunk_id))


def rrf(dense: list[EngineHit], lexical: list[EngineHit], k: float = 60.0, dense_weight: float = 0.5) -> list[FusedHit]:
    """score = 2w / (k + dense rank) + 2(1 - w) / (k + lexical rank); w = 0.5 is plain RRF."""
    fused = _collect(dense, lexical)
    for f in fused.values():
        if f.dense_rank:
            f.score += 2 * dense_weight / (k + f.dense_rank)
        if f.lexical_rank:
            f.score += 2 * (1 - dense_weight) / (k + f.lexical_rank)
    return _ranked(fused)


def minmax(scores: list[float]) -> Callable[[float | None], float]:
    low, high = min(scores, default=0.0), max(scores, default=0.0)
    span = high - low
    return lambda s: 0.0 if s is None or span == 0 else (s - low) / span


def zscore(scores: list[float]) -> Callable[[float | None], float]:
    if len(scores) < 2:
        return lambda s: 0.0
    mean, spread = statistics.fmean(scores), statistics.pstdev(scores) or 1.0
    floor = (min(scores) - mean) / spread
    return lambda s: floor if s is None else (s - mean) / spread


NORMALISERS = {"minmax": minmax, "zscore": zscore}


def convex(
    dense: list[EngineHit], lexical: list[EngineHit], dense_weight: float = 0.5, normalisation: str = "minmax"
) -> list[FusedHit]:
    """score = w * norm(dense) + (1 - w) * norm(lexical), each normalised over its own candidates."""
    fused = _collect(dense, lexical)
    norm_dense = NORMALISERS[normalisation]([h.score for h in dense])
    norm_lexical = NORMALISERS[normalisation]([h.score for h in lexical])
    for f in fused.values():
        d = norm_dense(f.dense_score if f.dense_rank else None)
        lx = norm_lexical(f.lexical_score if f.lexical_rank else None)
        f.score = dense_weight * d + (1 - dense_weight) * lx
    return _ranked(fused)


def single(dense: list[EngineHit], lexical: list[EngineHit], side: str) -> list[FusedHit]:
    """One retriever's ranking, the other's scores still reported where it found the same chunk."""
    fused = _collect(dense, lexical)
    for f in fused.values():
        f.score = f.dense_score if side == "dense" else f.lexical_score
    return _ranked(fused, lambda f: side in f.sources)


def fuse(
    dense: list[EngineHit], lexical: list[EngineHit], method: str, dense_weight: float, rrf_k: float
) -> list[FusedHit]:
    """One fixed fusion (`auto` is decided first, in services/retrieve/adaptive.py)."""
    if method == "rrf":
        return rrf(dense, lexical, rrf_k, dense_weight)
    if method in NORMALISERS:
        return convex(dense, lexical, dense_weight, method)
    if method in ("dense", "lexical"):
        return single(dense, lexical, method)
    raise ValueError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS[1:])}")


def pin_first(fused: list[FusedHit], chunk_ids: list[str]) -> list[FusedHit]:
    """The named chunks first, in the order given, ahead of everything else (their scores raised
    above the best); the rest keep their order."""
    pinned = [f for cid in chunk_ids for f in fused if f.chunk_id == cid]
    if not pinned:
        return fused
    top = max((f.score for f in fused), default=0.0)
    for position, f in enumerate(pinned):
        f.score = top + len(pinned) - position
    rest = [f for f in fused if f.chunk_id not in set(chunk_ids)]
    return pinned + rest


def latest_versions(dense: list[EngineHit], lexical: list[EngineHit]) -> tuple[list[EngineHit], list[EngineHit]]:
    """Only the newest version of each document among the candidates. While a document changes
    version, an engine shows the new version before it deletes the old one, and the two engines
    commit one after the other: for that moment both versions can be live somewhere."""
    newest: dict[int, int] = {}
    for hit in (*dense, *lexical):
        newest[hit.doc] = max(newest.get(hit.doc, 0), hit.version)
    return [h for h in dense if h.version == newest[h.doc]], [h for h in lexical if h.version == newest[h.doc]]


def cap_per_document(hits: list[FusedHit], limit: int) -> list[FusedHit]:
    """Diversity: keep at most `limit` chunks of any one document, in rank order."""
    if not limit:
        return hits
    seen: dict[int, int] = {}
    out = []
    for f in hits:
        if seen.get(f.hit.doc, 0) < limit:
            seen[f.hit.doc] = seen.get(f.hit.doc, 0) + 1
            out.append(f)
    return out
