"""Generate service: streams an answer built only from the given evidence, or abstains.

Two providers: `extractive` (no LLM; quotes the sources) and `openai` (any OpenAI-compatible
chat-completions endpoint), whose text is checked sentence by sentence before it is streamed.
"""

import contextvars
import time

import grpc
import numpy as np
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from rag.v1 import embed_pb2, embed_pb2_grpc, generate_pb2, generate_pb2_grpc, types_pb2
from services.common import semconv
from services.common.clients import channel
from services.common.config import GenerateSettings
from services.common.server import Service, run
from services.common.tokenizer import load_tokenizer, token_counter
from services.generate import extractive
from services.generate.chat_completions import ChatCompletions
from services.generate.condense import needs_context, rule_rewrite
from services.generate.confidence import Gate
from services.generate.llm import LlmAnswerer, Outcome
from services.generate.prompt import PROMPT_VERSION

tracer = trace.get_tracer("ragmesh.generate")
PROVIDERS = ("extractive", "openai")
# Whose answer is being checked: the embed service caches its texts per tenant.
CURRENT_TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("generate_tenant", default="")


class GenerateService(Service, generate_pb2_grpc.GenerateServiceServicer):
    name = "generate"

    def __init__(self, settings: GenerateSettings) -> None:
        if settings.provider not in PROVIDERS:
            raise SystemExit(f"generate: RAGMESH_PROVIDER must be one of {', '.join(PROVIDERS)}")
        if settings.provider == "openai" and not (settings.llm_url and settings.llm_model):
            raise SystemExit("generate: the openai provider needs RAGMESH_LLM_URL and RAGMESH_LLM_MODEL")
        super().__init__(settings)
        self.llm: LlmAnswerer | None = None

    def register(self, server):
        generate_pb2_grpc.add_GenerateServiceServicer_to_server(self, server)
        return [generate_pb2.DESCRIPTOR.services_by_name["GenerateService"].full_name]

    async def start(self) -> None:
        s = self.settings
        if s.provider == "openai":
            HTTPXClientInstrumentor().instrument()
            provider = ChatCompletions(
                s.llm_url, s.llm_model, s.llm_api_key, s.llm_timeout_seconds, s.llm_max_retries, stream=s.llm_stream
            )
            self.embedder = embed_pb2_grpc.EmbedServiceStub(channel(s.embed_addr, self.settings))
            self.llm = LlmAnswerer(s, provider, self._embed, token_counter(load_tokenizer(None, 256)))

    async def stop(self) -> None:
        if self.llm:
            await self.llm.provider.close()

    async def _embed(self, texts: list[str]) -> np.ndarray:
        reply = await self.embedder.Embed(
            embed_pb2.EmbedRequest(texts=texts, lane=embed_pb2.EMBED_LANE_INTERACTIVE, tenant=CURRENT_TENANT.get()),
            timeout=10,
        )
        return np.array([v.values for v in reply.vectors], dtype=np.float32)

    async def Generate(self, request, context):
        if not request.question.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "question is empty")
        CURRENT_TENANT.set(request.tenant)
        sentences = request.max_answer_sentences or self.settings.max_answer_sentences
        gate = self.gate(request)
        with tracer.start_as_current_span("rag.generate.generate") as span:
            span.set_attribute("rag.provider", self.settings.provider)
            if self.llm is None:
                final = self._extractive(request, sentences, gate)
                for piece in extractive_pieces(final):
                    yield generate_pb2.GenerateResponse(delta=piece)
            else:
                remaining = context.time_remaining()
                deadline = time.monotonic() + remaining if remaining is not None else None
                hits = list(request.hits)
                question, history = request.question, list(request.history)
                if request.condensed_by == "llm":  # a standalone question: no need of the turns
                    question, history = request.rewritten_query, []
                searched = request.rewritten_query or request.question
                answering = self.llm.answer(
                    question, hits, sentences, gate, deadline, history, searched, request.dense_skipped
                )
                async for item in answering:
                    if isinstance(item, Outcome):
                        final = self._llm_final(item)
                        if item.error:
                            span.set_attribute("rag.provider.error", item.error[:300])
                    else:
                        yield generate_pb2.GenerateResponse(delta=item)
            span.set_attribute("rag.answer.status", types_pb2.AnswerStatus.Name(final.status))
            span.set_attribute("rag.citations", len(final.citations))
            span.set_attribute("rag.tokens.prompt", final.usage.prompt_tokens)
            span.set_attribute("rag.tokens.completion", final.usage.completion_tokens)
            span.set_attribute("rag.cost", final.usage.cost_usd)
            span.set_attribute("rag.grounding.dropped", final.grounding.dropped_sentences)
            span.set_attribute("rag.grounding.removed_citations", final.grounding.removed_citations)
            span.set_attributes(self._conventions(final))
        yield generate_pb2.GenerateResponse(final=final)

    async def Condense(self, request, context):
        question = request.question.strip()
        if not question:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "question is empty")
        history = list(request.history)
        if not history or not needs_context(question):
            return generate_pb2.CondenseResponse(query=question)
        CURRENT_TENANT.set(request.tenant)
        with tracer.start_as_current_span("rag.generate.condense") as span:
            usage = types_pb2.TokenUsage()
            if self.llm is not None:
                remaining = context.time_remaining()
                deadline = time.monotonic() + remaining if remaining is not None else None
                rewritten, usage = await self.llm.condense(history, question, deadline)
                if rewritten:
                    span.set_attribute("rag.condense.method", "llm")
                    return generate_pb2.CondenseResponse(query=rewritten, method="llm", usage=usage)
            span.set_attribute("rag.condense.method", "rules")
            return generate_pb2.CondenseResponse(query=rule_rewrite(history, question), method="rules", usage=usage)

    def gate(self, request) -> Gate:
        """The configured gate; a request's min_retrieval_score replaces both dense bars (-1: no gate)."""
        s = self.settings
        if request.HasField("min_retrieval_score"):
            override = request.min_retrieval_score
            return Gate(override, min(override, s.min_dense_with_agreement), s.min_question_coverage)
        return Gate(s.min_dense_score, s.min_dense_with_agreement, s.min_question_coverage)

    def _conventions(self, final: generate_pb2.GenerateFinal) -> dict:
        """GenAI attributes: a chat with the configured LLM, or the extractive answerer (no model)."""
        usage = final.usage
        if self.llm is None:
            return semconv.generation("generate_content", "ragmesh", extractive.PROVIDER, 0, 0)
        s = self.settings
        return semconv.generation(
            "chat",
            "openai",
            s.llm_model,
            usage.prompt_tokens,
            usage.completion_tokens,
            max_tokens=s.llm_max_tokens,
            temperature=s.llm_temperature,
        )

    def _extractive(self, request, sentences: int, gate: Gate) -> generate_pb2.GenerateFinal:
        s = self.settings
        hits = list(request.hits)
        question = request.rewritten_query or request.question
        answer = extractive.extract_answer(
            question, hits, sentences, gate, s.min_sentence_overlap, dense_skipped=request.dense_skipped
        )
        return generate_pb2.GenerateFinal(
            answer=answer.text,
            status=answer.status,
            abstain_reason=answer.reason,
            confidence=answer.confidence,
            citations=answer.citations,
            usage=types_pb2.TokenUsage(),
            provider=extractive.PROVIDER,
            prompt_template_version=extractive.TEMPLATE_VERSION,
            parameters={
                "max_answer_sentences": str(sentences),
                "min_dense_score": str(gate.min_dense),
                "min_dense_with_agreement": str(gate.min_dense_with_agreement),
                "min_question_coverage": str(gate.min_coverage),
                "min_sentence_overlap": str(s.min_sentence_overlap),
            },
            grounding=types_pb2.GroundingReport(checked_sentences=len(answer.citations)),
            signals=answer.signals,
            notes=answer.notes,
            conflicts=answer.conflicts,
        )

    def _llm_final(self, outcome: Outcome) -> generate_pb2.GenerateFinal:
        return generate_pb2.GenerateFinal(
            answer=outcome.text,
            status=outcome.status,
            abstain_reason=outcome.reason,
            confidence=outcome.confidence,
            citations=outcome.citations,
            usage=outcome.usage,
            provider="openai",
            provider_model=self.settings.llm_model,
            prompt_template_version=PROMPT_VERSION,
            parameters=outcome.parameters,
            grounding=outcome.grounding,
            signals=outcome.signals,
            notes=outcome.notes,
            conflicts=outcome.conflicts,
        )


def extractive_pieces(final: generate_pb2.GenerateFinal) -> list[str]:
    """The extractive answer streamed a sentence at a time, as the LLM path streams."""
    pieces, at = [], 0
    for citation in final.citations:
        end = final.answer.find(" ", citation.answer_end)
        end = len(final.answer) if end < 0 else end + 1
        if end > at:
            pieces.append(final.answer[at:end])
            at = end
    if at < len(final.answer):
        pieces.append(final.answer[at:])
    return pieces


def main() -> None:
    run(lambda: GenerateService(GenerateSettings()))
