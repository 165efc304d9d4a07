from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class VaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kek_backend: Literal["local", "env", "hashicorp", "azure", "aws"] = "local"
    # local: path of the key file (default <data_dir>/kek.key, created 0600).
    key_file: str = ""
    # env: name of the environment variable holding a base64 32-byte key.
    env_var: str = "OPSGATE_KEK"
    # hashicorp: transit engine
    hashicorp_url: str = ""
    hashicorp_mount: str = "transit"
    hashicorp_key: str = "opsgate"
    hashicorp_token_env: str = "VAULT_TOKEN"  # noqa: S105 - a variable name, not a secret
    # azure
    azure_key_id: str = ""
    # aws
    aws_kms_key_id: str = ""
    aws_region: str = ""
    aws_endpoint_url: str = ""
    timeout_seconds: float = Field(5.0, gt=0, le=60)
