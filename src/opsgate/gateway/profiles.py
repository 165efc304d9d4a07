"""Capability facts about each upstream wire protocol (kept apart from wire and client code)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

JSON_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    kind: str
    # JSON mode is a request parameter upstream; otherwise the gateway adds JSON_INSTRUCTION.
    native_json_mode: bool
    # Upstream accepts stream_options.include_usage (usage is needed for accounting).
    stream_usage_option: bool
    # Unknown top-level request fields (vendor parameters) are forwarded.
    forwards_vendor_params: bool
    # Upstream requires max_tokens; this default applies when the client sets none.
    default_max_tokens: int | None
    max_temperature: float
    embeddings: bool


PROFILES: MappingProxyType[str, ProviderProfile] = MappingProxyType(
    {
        "openai": ProviderProfile("openai", True, True, True, None, 2.0, True),
        "azure": ProviderProfile("azure", True, True, True, None, 2.0, True),
        "anthropic": ProviderProfile("anthropic", False, False, False, 4096, 1.0, False),
        "bedrock": ProviderProfile("bedrock", False, False, False, 4096, 1.0, False),
    }
)


def profile(kind: str) -> ProviderProfile:
    return PROFILES[kind]
