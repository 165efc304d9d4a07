"""Kill-switch settings (under `gateway.quota.killswitch`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KillSwitchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Safety net beside the bus: every replica re-reads the switches this often, so a lost
    # bus message (or a CLI flip on the in-process bus) still takes effect.
    reload_seconds: float = Field(5.0, ge=0.05, le=300)
