from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OIDCIssuer(BaseModel):
    """One trusted identity provider."""

    model_config = ConfigDict(extra="forbid")

    issuer: str
    audience: list[str] = Field(min_length=1)
    # Empty: discovered from <issuer>/.well-known/openid-configuration.
    jwks_url: str = ""
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256", "EdDSA"])
    # Claims that carry directory groups / app roles (Entra ID: groups, roles; Okta: groups).
    group_claims: list[str] = Field(default_factory=lambda: ["groups"])
    role_claims: list[str] = Field(default_factory=lambda: ["roles"])
    subject_claim: str = "sub"
    tenant_claim: str = ""
    # Tenant used when tenant_claim is empty or absent.
    tenant: str = "default"
    leeway_seconds: int = Field(30, ge=0, le=300)


class IdentitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    oidc: list[OIDCIssuer] = Field(default_factory=list)
    # Directory group (or IdP role) -> OpsGate roles.
    group_roles: dict[str, list[str]] = Field(default_factory=dict)
    api_key_prefix: str = Field("ogk", pattern=r"^[a-z]{2,8}$")
    # How long a verified API key / token stays cached; revocation is pushed on the bus
    # and also bounded by this.
    cache_ttl_seconds: float = Field(1.0, gt=0, le=60)
    jwks_cache_seconds: float = Field(300.0, ge=10)
    jwks_timeout_seconds: float = Field(5.0, gt=0, le=60)
