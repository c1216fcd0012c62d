"""Traces can be sampled with the standard OTEL_TRACES_SAMPLER variables, and an answer still
names its trace id when its trace is not recorded."""

from services.common.telemetry import current_trace_id, setup_tracing


def test_a_trace_sampled_out_is_not_recorded_but_keeps_its_id(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    provider = setup_tracing("sampling-test")
    assert provider.sampler.get_description().startswith("ParentBased{")
    with provider.get_tracer("t").start_as_current_span("root") as span:
        assert not span.is_recording()
        assert len(current_trace_id()) == 32 and current_trace_id() != "0" * 32


def test_every_trace_is_recorded_by_default(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    provider = setup_tracing("sampling-test")
    with provider.get_tracer("t").start_as_current_span("root") as span:
        assert span.is_recording()
