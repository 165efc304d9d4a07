"""Spans are recorded only when something consumes them; trace ids exist either way."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opsgate.telemetry.settings import TelemetrySettings
from opsgate.telemetry.tracing import Tracing


def test_spans_recorded_only_once_a_processor_exists() -> None:
    tracing = Tracing(TelemetrySettings())
    with tracing.tracer.start_as_current_span("unexported") as span:
        assert not span.is_recording()
        assert span.get_span_context().is_valid  # a real trace id for logs and audit
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracing.tracer.start_as_current_span("exported") as span:
        assert span.is_recording()
        span.set_attribute("k", "v")
    [done] = exporter.get_finished_spans()
    assert done.name == "exported" and done.attributes == {"k": "v"}
    tracing.shutdown()


def test_configured_exporter_turns_recording_on() -> None:
    tracing = Tracing(TelemetrySettings(otlp_endpoint="http://127.0.0.1:9/"))
    # no span is started: nothing listens on :9, so an export would only log a failure
    assert tracing.provider.sampler.get_description() == "WhenConsumed{ParentBased{ALWAYS_ON}}"
    tracing.shutdown()
