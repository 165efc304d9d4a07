from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    service_name: str = "opsgate"
    # OTLP/HTTP endpoint, e.g. http://otel-collector:4318. Empty: spans are created
    # (trace ids propagate) but nothing is exported.
    otlp_endpoint: str = ""
    metrics_enabled: bool = True
