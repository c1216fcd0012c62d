"""Generate service: streams an answer built only from the given evidence, or abstains."""

import grpc
from opentelemetry import trace

from rag.v1 import generate_pb2, generate_pb2_grpc, types_pb2
from services.common.config import GenerateSettings
from services.common.server import Service, run
from services.generate.extractive import PROVIDER, TEMPLATE_VERSION, extract_answer

tracer = trace.get_tracer("ragmesh.generate")


class GenerateService(Service, generate_pb2_grpc.GenerateServiceServicer):
    name = "generate"

    def register(self, server):
        generate_pb2_grpc.add_GenerateServiceServicer_to_server(self, server)
        return [generate_pb2.DESCRIPTOR.services_by_name["GenerateService"].full_name]

    async def Generate(self, request, context):
        if not request.question.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "question is empty")
        s = self.settings
        with tracer.start_as_current_span("rag.generate.generate") as span:
            answer = extract_answer(
                request.question,
                list(request.hits),
                request.max_answer_sentences or s.max_answer_sentences,
                s.min_dense_score,
                s.min_sentence_overlap,
            )
            span.set_attribute("rag.provider", PROVIDER)
            span.set_attribute("rag.answer.status", types_pb2.AnswerStatus.Name(answer.status))
            span.set_attribute("rag.citations", len(answer.citations))
        for piece in answer.pieces:
            yield generate_pb2.GenerateResponse(delta=piece)
        yield generate_pb2.GenerateResponse(
            final=generate_pb2.GenerateFinal(
                answer=answer.text,
                status=answer.status,
                abstain_reason=answer.reason,
                confidence=answer.confidence,
                citations=answer.citations,
                usage=types_pb2.TokenUsage(),
                provider=PROVIDER,
                provider_model="",
                prompt_template_version=TEMPLATE_VERSION,
            )
        )


def main() -> None:
    run(lambda: GenerateService(GenerateSettings()))
