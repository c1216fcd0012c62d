"""Answers rendered by an LLM and then checked: every sentence must be supported by the sources it
cites; citations to sources that were not given are removed; the rest decides the status."""

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from rag.v1 import types_pb2
from services.generate.chat_completions import ChatCompletions, Delta, Finished, ProviderError
from services.generate.citations import split_citations, with_markers
from services.generate.condense import checked_rewrite, condense_messages
from services.generate.confidence import Gate, passes, report, signals
from services.generate.conflicts import Claim, describe, find_conflicts
from services.generate.extractive import candidates
from services.generate.grounding import Embed, Grounder, SentenceGate
from services.generate.prompt import ABSTAIN_MARKER, build_prompt
from services.generate.text import citation

S = types_pb2
CONDENSE_MAX_TOKENS = 60  # one question


@dataclass
class Outcome:
    text: str = ""
    status: int = S.ANSWER_STATUS_ABSTAINED
    reason: int = S.ABSTAIN_REASON_UNSPECIFIED
    confidence: float = 0.0
    citations: list[types_pb2.Citation] = field(default_factory=list)
    usage: types_pb2.TokenUsage = field(default_factory=types_pb2.TokenUsage)
    grounding: types_pb2.GroundingReport = field(default_factory=types_pb2.GroundingReport)
    parameters: dict[str, str] = field(default_factory=dict)
    error: str = ""
    signals: types_pb2.RetrievalSignals = field(default_factory=types_pb2.RetrievalSignals)
    notes: list[int] = field(default_factory=list)
    conflicts: list[types_pb2.Conflict] = field(default_factory=list)


def _chunk_fields(hit: types_pb2.Hit, text: str) -> dict:
    """The hit's chunk with the text the prompt gave of it."""
    chunk = hit.chunk
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "text": text,
        "metadata": dict(chunk.metadata),
    }


def parse_prices(raw: str) -> dict[str, tuple[float, float]]:
    """{"model": {"prompt": usd_per_mtok, "completion": usd_per_mtok}} -> {model: (prompt, completion)}."""
    table = json.loads(raw or "{}")
    return {model: (float(p.get("prompt", 0)), float(p.get("completion", 0))) for model, p in table.items()}


def cost_usd(prices: dict[str, tuple[float, float]], model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prompt, completion = prices.get(model, (0.0, 0.0))
    return round((prompt * prompt_tokens + completion * completion_tokens) / 1e6, 8)


def retrieval_abstention(
    question: str, hits: list[types_pb2.Hit], gate: Gate, dense_skipped: bool = False
) -> tuple[int, float] | None:
    """(reason, confidence) when the retrieved evidence is too weak to answer from at all."""
    if not hits:
        return S.ABSTAIN_REASON_NO_RELEVANT_SOURCES, 0.0
    read = signals(question, hits, dense_skipped)
    if not passes(read, gate):
        return S.ABSTAIN_REASON_LOW_RETRIEVAL_CONFIDENCE, max(read.best_dense, 0.0)
    return None


def decide(kept: int, dropped: int, model_abstained: bool, error: str, finish_reason: str) -> tuple[int, int]:
    """Status and reason from what happened to the sentences and the call."""
    if kept == 0:
        failed = error and not model_abstained
        reason = S.ABSTAIN_REASON_PROVIDER_ERROR if failed else S.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES
        return S.ANSWER_STATUS_ABSTAINED, reason
    if error:
        return S.ANSWER_STATUS_PARTIAL, S.ABSTAIN_REASON_PROVIDER_ERROR
    if finish_reason == "length":
        return S.ANSWER_STATUS_PARTIAL, S.ABSTAIN_REASON_BUDGET_EXCEEDED
    if dropped:
        return S.ANSWER_STATUS_PARTIAL, S.ABSTAIN_REASON_UNSUPPORTED_BY_SOURCES
    return S.ANSWER_STATUS_ANSWERED, S.ABSTAIN_REASON_UNSPECIFIED


class LlmAnswerer:
    def __init__(self, settings, provider: ChatCompletions, embed: Embed, count_tokens: Callable[[str], int]):
        self.settings, self.provider, self.embed, self.count_tokens = settings, provider, embed, count_tokens
        self.prices = parse_prices(settings.llm_prices)

    def parameters(self, max_sentences: int, gate: Gate) -> dict[str, str]:
        s = self.settings
        return {
            "min_dense_score": str(gate.min_dense),
            "min_dense_with_agreement": str(gate.min_dense_with_agreement),
            "min_question_coverage": str(gate.min_coverage),
            "temperature": str(s.llm_temperature),
            "max_tokens": str(s.llm_max_tokens),
            "prompt_token_budget": str(s.prompt_token_budget),
            "max_sources": str(s.llm_max_sources),
            "source_tokens": str(s.llm_source_tokens),
            "max_answer_sentences": str(max_sentences),
            "min_support_overlap": str(s.min_support_overlap),
            "min_support_cosine": str(s.min_support_cosine),
            "stream": str(s.llm_stream).lower(),
        }

    def _disagreements(self, question: str, sources: list, outcome: Outcome) -> str | None:
        """The model was asked to give both values when sources disagree; whether it did or not, its
        cited sentences are checked against the other sources' sentences, and a disagreement found
        is stated (both sources cited, the newer marked) and noted. The sentence to stream, if any."""
        hits = [source.hit for source in sources]
        texts = [types_pb2.Hit(chunk=types_pb2.Chunk(**_chunk_fields(s.hit, s.text))) for s in sources]
        found = candidates(question, texts, 0.0, len(texts))
        by_number = {source.number: source for source in sources}
        quoted = {c.quote for c in outcome.citations}
        chosen = [Claim(c.sentence, c.number, hits[c.number - 1]) for c in found if c.sentence in quoted]
        others = [Claim(c.sentence, c.number, hits[c.number - 1]) for c in found if c.sentence not in quoted]
        conflicts = find_conflicts(chosen, others)
        if not conflicts:
            return None
        outcome.notes.append(S.ANSWER_NOTE_CONFLICTING_SOURCES)
        statements = []
        for conflict, _, _ in conflicts:
            outcome.conflicts.append(conflict)
            statement = describe(conflict)
            start = len(outcome.text) + 1
            for claim in conflict.claims:
                hit = by_number[claim.source_number].hit
                outcome.citations.append(citation(claim.source_number, hit, start, start + len(statement), claim.quote))
            outcome.text += " " + statement
            statements.append(" " + statement)
        return "".join(statements)

    async def condense(
        self, history: list[types_pb2.Turn], question: str, deadline: float | None
    ) -> tuple[str | None, types_pb2.TokenUsage]:
        """The model's standalone rewrite of a follow-up, if it holds up (checked_rewrite); the usage."""
        s = self.settings
        messages = condense_messages(history, question)
        text, reported = [], None
        try:
            async for event in self.provider.complete(messages, CONDENSE_MAX_TOKENS, 0.0, deadline):
                if isinstance(event, Delta):
                    text.append(event.text)
                elif isinstance(event, Finished):
                    reported = event
        except (ProviderError, TimeoutError):
            return None, types_pb2.TokenUsage()
        prompt_tokens = reported.prompt_tokens if reported and reported.prompt_tokens is not None else None
        completion_tokens = reported.completion_tokens if reported and reported.completion_tokens is not None else None
        if prompt_tokens is None:
            prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        if completion_tokens is None:
            completion_tokens = self.count_tokens("".join(text))
        usage = types_pb2.TokenUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd(self.prices, s.llm_model, prompt_tokens, completion_tokens),
        )
        return checked_rewrite("".join(text), history, question), usage

    async def answer(
        self,
        question: str,
        hits: list[types_pb2.Hit],
        max_sentences: int,
        gate: Gate,
        deadline: float | None,
        history: list[types_pb2.Turn] = (),
        searched: str = "",
        dense_skipped: bool = False,
    ) -> AsyncIterator[str | Outcome]:
        """Checked answer text in pieces, then the Outcome."""
        s = self.settings
        outcome = Outcome(parameters=self.parameters(max_sentences, gate))
        searched = searched or question  # what retrieval was asked: the gate reads its coverage
        outcome.signals = report(signals(searched, hits, dense_skipped))
        weak = retrieval_abstention(searched, hits, gate, dense_skipped)
        if weak:
            outcome.reason, outcome.confidence = weak[0], round(weak[1], 4)
            yield outcome
            return
        prompt = build_prompt(
            question,
            hits,
            s.prompt_token_budget,
            self.count_tokens,
            max_sentences,
            s.llm_max_sources,
            s.llm_source_tokens,
            history,
        )
        if not prompt.sources:
            outcome.reason = S.ABSTAIN_REASON_BUDGET_EXCEEDED
            yield outcome
            return
        best_dense = max((h.dense_score for h in hits if h.dense_matched), default=0.0)
        grounder = Grounder(prompt.sources, self.embed, s.min_support_overlap, s.min_support_cosine)
        by_number = {source.number: source for source in prompt.sources}
        gate, raw, finish_reason, reported = SentenceGate(), [], "", None
        kept_scores: list[float] = []
        model_abstained = False

        async def check(sentence: str) -> str | None:
            nonlocal model_abstained
            if ABSTAIN_MARKER in sentence:
                model_abstained = True
                return None
            bare, numbers, invalid = split_citations(sentence, set(by_number))
            outcome.grounding.removed_citations += invalid
            if not bare:
                return None
            outcome.grounding.checked_sentences += 1
            judgement = await grounder.judge(bare, numbers)
            if not judgement.supported:
                outcome.grounding.dropped_sentences += 1
                return None
            kept_scores.append(judgement.score)
            outcome.grounding.reattributed_citations += judgement.reattributed
            marked = with_markers(bare, judgement.numbers)
            piece = ("" if not outcome.text else " ") + marked
            start = len(outcome.text) + (1 if outcome.text else 0)
            for number in judgement.numbers:
                hit = by_number[number].hit
                outcome.citations.append(citation(number, hit, start, start + len(marked), judgement.quote))
            outcome.text += piece
            return piece

        try:
            async for event in self.provider.complete(prompt.messages, s.llm_max_tokens, s.llm_temperature, deadline):
                if isinstance(event, Delta):
                    raw.append(event.text)
                    for sentence in gate.feed(event.text):
                        if piece := await check(sentence):
                            yield piece
                elif isinstance(event, Finished):
                    finish_reason, reported = event.reason, event
        except (ProviderError, TimeoutError) as exc:
            outcome.error = str(exc) or "the chat completions call timed out"
        if not outcome.error:
            for sentence in gate.flush():
                if piece := await check(sentence):
                    yield piece

        prompt_tokens = reported.prompt_tokens if reported and reported.prompt_tokens is not None else None
        completion_tokens = reported.completion_tokens if reported and reported.completion_tokens is not None else None
        if prompt_tokens is None:
            prompt_tokens = sum(self.count_tokens(m["content"]) for m in prompt.messages)
        if completion_tokens is None:
            completion_tokens = self.count_tokens("".join(raw))
        outcome.usage = types_pb2.TokenUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd(self.prices, s.llm_model, prompt_tokens, completion_tokens),
        )
        kept, dropped = len(kept_scores), outcome.grounding.dropped_sentences
        if kept and not outcome.error:
            if piece := self._disagreements(searched, prompt.sources, outcome):
                yield piece
        outcome.status, outcome.reason = decide(kept, dropped, model_abstained, outcome.error, finish_reason)
        support = sum(kept_scores) / kept if kept else 0.0
        share = kept / (kept + dropped) if kept + dropped else 0.0
        outcome.confidence = round(min(1.0, 0.5 * max(best_dense, 0.0) + 0.5 * support * share), 4)
        yield outcome
