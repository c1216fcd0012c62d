"""Pure rank fusion: inputs are two ranked lists, output is one list with every score kept."""

from dataclasses import dataclass, field

from services.retrieve.backends.base import EngineHit


@dataclass
class FusedHit:
    chunk_id: str
    hit: EngineHit
    score: float = 0.0
    dense_score: float = 0.0
    dense_rank: int = 0
    lexical_score: float = 0.0
    lexical_rank: int = 0
    sources: set[str] = field(default_factory=set)


def rrf(dense: list[EngineHit], lexical: list[EngineHit], k: float = 60.0) -> list[FusedHit]:
    """Reciprocal rank fusion: score = sum over lists of 1 / (k + rank), ranks from 1."""
    fused: dict[str, FusedHit] = {}
    for rank, hit in enumerate(dense, start=1):
        entry = fused.setdefault(hit.chunk.chunk_id, FusedHit(hit.chunk.chunk_id, hit))
        entry.dense_score, entry.dense_rank = hit.score, rank
        entry.score += 1.0 / (k + rank)
        entry.sources.add("dense")
    for rank, hit in enumerate(lexical, start=1):
        entry = fused.setdefault(hit.chunk.chunk_id, FusedHit(hit.chunk.chunk_id, hit))
        entry.lexical_score, entry.lexical_rank = hit.score, rank
        entry.score += 1.0 / (k + rank)
        entry.sources.add("lexical")
    return sorted(fused.values(), key=lambda f: (-f.score, f.chunk_id))
