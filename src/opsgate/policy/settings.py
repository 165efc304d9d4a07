from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bundle_dir: str = ""
