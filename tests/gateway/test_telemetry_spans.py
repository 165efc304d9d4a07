"""Which span carries a model call's GenAI attributes (opsgate.gateway.telemetry)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from opsgate.gateway.telemetry import end_span, start_span

BODY = {"max_tokens": 9, "temperature": 0.5, "messages": []}


def _recording() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("t"), exporter


def _end(span: trace.Span, own: bool) -> None:
    end_span(
        span, own, deployment=None, input_tokens=3, output_tokens=4, status=200,
        error_code=None, route="d1",
    )  # fmt: skip


def test_a_recording_request_span_carries_the_attributes() -> None:
    tracer, exporter = _recording()
    with tracer.start_as_current_span("POST /v1/chat/completions") as server:
        span, own = start_span(tracer, "chat", "m", BODY)
        assert span is server and own is False
        _end(span, own)
    (finished,) = exporter.get_finished_spans()
    attrs = finished.attributes or {}
    assert attrs["gen_ai.request.model"] == "m" and attrs["gen_ai.request.max_tokens"] == 9
    assert attrs["gen_ai.usage.output_tokens"] == 4 and attrs["opsgate.route"] == "d1"


def test_a_non_recording_request_span_starts_no_second_span() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    tracer = provider.get_tracer("t")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracer.start_as_current_span("POST /v1/chat/completions") as server:
        assert not server.is_recording() and server.get_span_context().is_valid
        span, own = start_span(tracer, "chat", "m", BODY)
        # The same (non-recording) span: a child would not record either.
        assert span is server and own is False
        _end(span, own)
    assert exporter.get_finished_spans() == ()


def test_a_call_outside_any_request_gets_its_own_span() -> None:
    tracer, exporter = _recording()
    span, own = start_span(tracer, "embeddings", "emb", {})
    assert own is True and span.is_recording()
    _end(span, own)
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "embeddings emb"
    assert (finished.attributes or {})["gen_ai.operation.name"] == "embeddings"
