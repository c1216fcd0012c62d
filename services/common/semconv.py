"""OpenTelemetry semantic conventions that ragmesh's spans follow beside their own `rag.*`
attributes: GenAI attributes on model calls (generate, embed) and messaging attributes on NATS
publishes and consumers, so that tools which know the conventions read ragmesh's traces as they
read anyone's."""

from collections.abc import Sequence

# GenAI (gen_ai.*): what was asked of which model, and what it used.
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_DIMENSIONS = "gen_ai.embeddings.dimension.count"

# Messaging (messaging.*): which subject, which way, which message.
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_BODY_SIZE = "messaging.message.body.size"
MESSAGING_CONSUMER_GROUP = "messaging.consumer.group.name"
MESSAGING_BATCH_COUNT = "messaging.batch.message_count"
NATS_STREAM_SEQUENCE = "messaging.nats.stream_sequence"  # JetStream's own: no convention names it


def generation(
    operation: str, provider: str, model: str, input_tokens: int, output_tokens: int, **request: float
) -> dict[str, str | int | float]:
    """A text generation (`chat` with an LLM; `generate_content` for the extractive answerer)."""
    attributes = {
        GEN_AI_OPERATION: operation,
        GEN_AI_PROVIDER: provider,
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_INPUT_TOKENS: input_tokens,
        GEN_AI_OUTPUT_TOKENS: output_tokens,
    }
    if "max_tokens" in request:
        attributes[GEN_AI_MAX_TOKENS] = int(request["max_tokens"])
    if "temperature" in request:
        attributes[GEN_AI_TEMPERATURE] = float(request["temperature"])
    return attributes


def embeddings(model: str, model_id: str, input_tokens: int, dimensions: int) -> dict[str, str | int]:
    """An embeddings call: the model asked for by name, the exact one that answered (with its hash)."""
    return {
        GEN_AI_OPERATION: "embeddings",
        GEN_AI_PROVIDER: "onnxruntime",
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_RESPONSE_MODEL: model_id,
        GEN_AI_INPUT_TOKENS: input_tokens,
        GEN_AI_DIMENSIONS: dimensions,
    }


def publish(subject: str, body_size: int, msg_id: str | None) -> dict[str, str | int]:
    """A PRODUCER span: one message sent to a subject (JetStream stores it in a stream)."""
    attributes = {
        MESSAGING_SYSTEM: "nats",
        MESSAGING_DESTINATION: subject,
        MESSAGING_OPERATION_TYPE: "send",
        MESSAGING_OPERATION_NAME: "publish",
        MESSAGING_BODY_SIZE: body_size,
    }
    if msg_id:
        attributes[MESSAGING_MESSAGE_ID] = msg_id
    return attributes


def process(msg, batch: Sequence | None = None) -> dict[str, str | int]:
    """A CONSUMER span: a message (or a batch that starts with it) taken from a JetStream consumer
    and worked on."""
    attributes = {
        MESSAGING_SYSTEM: "nats",
        MESSAGING_DESTINATION: msg.subject,
        MESSAGING_OPERATION_TYPE: "process",
        MESSAGING_OPERATION_NAME: "process",
        MESSAGING_BODY_SIZE: len(msg.data or b""),
    }
    msg_id = (msg.headers or {}).get("Nats-Msg-Id")
    if msg_id:
        attributes[MESSAGING_MESSAGE_ID] = msg_id
    try:
        metadata = msg.metadata
    except Exception:  # a plain NATS message (a request, a core subscription) has no JetStream metadata
        metadata = None
    if metadata is not None:
        attributes[MESSAGING_CONSUMER_GROUP] = metadata.consumer
        attributes[NATS_STREAM_SEQUENCE] = metadata.sequence.stream
    if batch is not None and len(batch) > 1:
        attributes[MESSAGING_BATCH_COUNT] = len(batch)
    return attributes
