"""Settings of the `aws` connector (kept apart so loading settings needs no boto3)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

REGION = r"^[a-z]{2}(-(gov|iso[a-z]?))?-[a-z]+-[0-9]{1,2}$"
SSM_DOCUMENT = r"^[A-Za-z0-9_.-]{3,128}$"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
# Patch and agent maintenance only: nothing that runs caller-supplied commands.
DEFAULT_SSM_DOCUMENTS = ["AWS-RunPatchBaseline", "AWS-UpdateSSMAgent", "AWS-RefreshAssociation"]


class AwsSettings(BaseModel):
    """`tools.aws` in the settings file."""

    model_config = ConfigDict(extra="forbid")

    # Off by default: with it off the connector offers no tools.
    enabled: bool = False
    # Region used when a call names none (and for STS).
    region: str = Field("us-east-1", pattern=REGION)
    # Further regions a call may name; any other region is refused before AWS is asked.
    regions: list[Annotated[str, Field(pattern=REGION)]] = Field(default_factory=list)
    # Another endpoint for every service (a VPC endpoint, a proxy, moto in tests).
    endpoint_url: str | None = Field(None, pattern=r"^https?://")
    # Base credentials, used only to call AssumeRole: a vault reference whose secret is
    # "ACCESS_KEY_ID:SECRET_ACCESS_KEY" or JSON {aws_access_key_id, aws_secret_access_key,
    # aws_session_token?}. Unset = boto3's default chain (env, profile, instance role, IRSA).
    credentials: str | None = Field(None, pattern=r"^secret://[a-z0-9][a-z0-9._-]{0,63}$")
    # Tool name ("aws.ec2_stop_instances"), zone id ("cloud-infrastructure") or "*" -> role
    # ARN; the most specific key wins. A tool matching no key is refused.
    roles: dict[str, Annotated[str, Field(pattern=ROLE_ARN)]] = Field(default_factory=dict)
    # Passed to AssumeRole; the roles' trust policies should require it (confused deputy).
    external_id: str | None = Field(None, pattern=r"^[A-Za-z0-9+=,.@:/-]{2,1224}$")
    # Lifetime of assumed-role credentials; they are renewed `refresh_seconds` before expiry.
    session_seconds: int = Field(900, ge=900, le=43200)
    refresh_seconds: int = Field(300, ge=30, le=800)
    # RoleSessionName, visible in CloudTrail next to OpsGate's own audit record.
    session_name: str = Field("opsgate", pattern=r"^[A-Za-z0-9+=,.@_-]{2,64}$")
    # RoleSessionName `<session_name>-<principal id>` instead, so CloudTrail names the person,
    # key or agent; credentials are then assumed and cached per role and principal.
    session_per_principal: bool = False
    # SSM documents aws.ssm_send_command may run (AWS-RunShellScript is deliberately absent).
    ssm_documents: list[Annotated[str, Field(pattern=SSM_DOCUMENT)]] = Field(
        default_factory=lambda: list(DEFAULT_SSM_DOCUMENTS)
    )
    # Largest Lambda payload (serialised JSON) aws.lambda_invoke sends.
    lambda_payload_max_bytes: int = Field(32 * 1024, ge=2, le=256 * 1024)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=60)
