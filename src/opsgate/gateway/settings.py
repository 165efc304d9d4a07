from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
