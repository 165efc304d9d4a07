"""OpenTelemetry tracing: a tracer provider per app; OTLP export only when configured."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

from opsgate import __version__
from opsgate.telemetry.settings import TelemetrySettings


class Tracing:
    def __init__(self, settings: TelemetrySettings) -> None:
        resource = Resource.create(
            {"service.name": settings.service_name, "service.version": __version__}
        )
        self.provider = TracerProvider(resource=resource)
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint)))
        self.tracer: Tracer = self.provider.get_tracer("opsgate", __version__)

    def shutdown(self) -> None:
        self.provider.shutdown()
