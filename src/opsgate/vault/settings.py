from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class VaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kek_backend: Literal["local", "env", "hashicorp", "azure", "aws"] = "local"
    # local: the keyring file (default <data_dir>/kek.keyring, created 0600).
    key_file: str = ""
    # env: base64 of a 32-byte key, usually from OPSGATE_VAULT__ENV_KEY; previous keys stay
    # listed so data keys wrapped by them can still be unwrapped until rotation re-wraps them.
    env_key: SecretStr | None = None
    env_previous_keys: list[SecretStr] = Field(default_factory=list)
    # hashicorp: transit secrets engine
    hashicorp_url: str = ""
    hashicorp_mount: str = "transit"
    hashicorp_key: str = "opsgate"
    hashicorp_token: SecretStr | None = None
    # azure: full key identifier https://<vault>.vault.azure.net/keys/<name>[/<version>]
    azure_key_id: str = ""
    # aws
    aws_kms_key_id: str = ""
    aws_region: str = ""
    aws_endpoint_url: str = ""
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    max_secret_bytes: int = Field(64 * 1024, ge=1, le=1024 * 1024)
