from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Minimum level of the JSON logs on stderr.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # json for machines (default), console for a human at a terminal.
    log_format: Literal["json", "console"] = "json"
    # service.name on spans.
    service_name: str = "opsgate"
    # OTLP/HTTP endpoint, e.g. http://otel-collector:4318. Empty: spans are created
    # non-recording (trace ids propagate) and nothing is exported.
    otlp_endpoint: str = ""
    # Serve Prometheus metrics on /metrics.
    metrics_enabled: bool = True
