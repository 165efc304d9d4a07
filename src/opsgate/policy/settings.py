from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # embedded: regorus in-process (default). opa: an OPA server's Data API.
    backend: Literal["embedded", "opa"] = "embedded"
    # Directory of *.rego files and data.json; empty means the bundle shipped in policies/.
    bundle_dir: str = ""
    # How often the bundle directory is checked for changes (hot reload), in seconds.
    reload_seconds: float = Field(1.0, gt=0, le=3600)
    # OPA server base URL, e.g. http://127.0.0.1:8181 (backend: opa).
    opa_url: str = ""
    # Data API path of the decision document.
    opa_path: str = "opsgate/decision"
    # Per-decision timeout for the OPA backend; past it the decision fails closed.
    timeout_seconds: float = Field(0.5, gt=0, le=30)
    # Actions allowed when evaluation fails or times out (fail open); all others fail closed.
    fail_open_actions: list[str] = Field(default_factory=list)
    # A bundle whose probe evaluation takes longer than this is refused (explosion bound).
    probe_timeout_seconds: float = Field(5.0, gt=0, le=120)
    # Size bounds for each policy file.
    max_file_bytes: int = Field(1024 * 1024, ge=1024)
    max_lines: int = Field(20_000, ge=10)
