"""`aws` connector: EC2, ECS, Lambda, RDS, SSM and CloudWatch through boto3, one IAM role per tool.

Every call assumes the role configured for its tool (STS AssumeRole, with the external id if
set) and signs with those temporary credentials only. The base credentials (a vault secret or
boto3's default chain) are used for nothing but AssumeRole, so each role's policy can allow
exactly one tool's API actions. A tool without a role is refused. boto3 is synchronous: every
AWS request runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from opsgate.errors import ConfigError, Forbidden, ValidationFailed
from opsgate.tools.catalog import ToolSpec, ZoneSpec, load_tools
from opsgate.tools.connectors.aws_session import (
    Assumed,
    AssumeFailed,
    Calls,
    base_credentials,
    client_error,
)
from opsgate.tools.connectors.aws_settings import AwsSettings
from opsgate.tools.connectors.aws_summaries import Out, db, instance, iso, service, transitions
from opsgate.tools.connectors.base import CallContext, ConnectorStatus, ToolResult

MAX_RESULT_PAYLOAD = 16 * 1024
# Characters AssumeRole does not accept in a RoleSessionName.
_SESSION_UNSAFE = re.compile(r"[^A-Za-z0-9+=,.@_-]")
# Assumed-role credentials kept at most (per role, or per role and principal).
_CACHE_MAX = 4096


Handler = Callable[[Calls, dict[str, Any]], Awaitable[Out]]


class AwsConnector:
    name = "aws"

    def __init__(
        self,
        settings: AwsSettings,
        zones: dict[str, ZoneSpec],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._tools = {t.name: t for t in load_tools(Path(__file__).with_name("aws.yaml"), zones)}
        self._validators = {n: Draft202012Validator(t.input_schema) for n, t in self._tools.items()}
        known = {"*", *self._tools, *(t.zone for t in self._tools.values())}
        unknown = sorted(set(settings.roles) - known)
        if unknown:
            raise ConfigError(
                [
                    (f"tools.aws.roles.{k}", "not an aws tool, a zone of one, or '*'")
                    for k in unknown
                ]
            )
        # (role ARN, RoleSessionName) -> credentials, and a lock per key (one AssumeRole at a
        # time for it)
        self._cache: dict[tuple[str, str], Assumed] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # role ARN -> why its last AssumeRole failed (cleared by the next success)
        self._errors: dict[str, str] = {}

    def tools(self) -> list[ToolSpec]:
        return list(self._tools.values()) if self.settings.enabled else []

    def role_for(self, tool: str) -> str:
        """The role ARN a tool runs as: tool name, then zone, then "*"; Forbidden if none."""
        spec = self._tools[tool]
        roles = self.settings.roles
        arn = roles.get(tool) or roles.get(spec.zone) or roles.get("*")
        if not arn:
            raise Forbidden(
                f"no AWS role configured for {tool}: set tools.aws.roles[{tool!r}], "
                f"[{spec.zone!r}] or ['*'] (calls never use the base credentials)"
            )
        return arn

    async def status(self) -> ConnectorStatus:
        try:
            return await self._status()
        except Exception as exc:  # status never raises
            return ConnectorStatus("failed", f"status check failed: {type(exc).__name__}")

    async def _status(self) -> ConnectorStatus:
        s = self.settings
        if not s.enabled:
            return ConnectorStatus("disabled", "tools.aws.enabled is false")
        if not s.roles:
            return ConnectorStatus("failed", "no roles in tools.aws.roles: every call is refused")
        if s.credentials is None:
            import boto3

            def chain() -> bool:
                return boto3.session.Session().get_credentials() is not None

            if not await asyncio.wait_for(asyncio.to_thread(chain), 5):
                return ConnectorStatus(
                    "failed",
                    "no base credentials: set tools.aws.credentials or provide boto3's default "
                    "chain (environment, profile, instance role)",
                )
        if self._errors:
            return ConnectorStatus("failed", "; ".join(self._errors.values()))
        missing = []
        for name in self._tools:
            try:
                self.role_for(name)
            except Forbidden:
                missing.append(name)
        reason = f"no role (refused): {', '.join(missing)}" if missing else ""
        return ConnectorStatus("ready", reason)

    async def aclose(self) -> None:
        self._cache.clear()

    # --- credentials ---------------------------------------------------------------------

    def session_name(self, ctx: CallContext) -> str:
        """The RoleSessionName for a call: the configured name, or with
        `session_per_principal` that name and the caller's id (characters STS refuses become
        '-'; at most 64)."""
        s = self.settings
        if not s.session_per_principal:
            return s.session_name
        return _SESSION_UNSAFE.sub("-", f"{s.session_name}-{ctx.principal.id}")[:64]

    def _evict(self) -> None:
        """Bound the per-principal cache: drop expired credentials, and all if still full."""
        if len(self._cache) < _CACHE_MAX:
            return
        now = self._clock()
        for key in [k for k, v in self._cache.items() if v.expires <= now]:
            del self._cache[key]
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        busy = {k for k, lock in self._locks.items() if lock.locked()}
        self._locks = {k: v for k, v in self._locks.items() if k in busy or k in self._cache}

    async def _assume(self, arn: str, ctx: CallContext) -> Assumed:
        key = (arn, self.session_name(ctx))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached and cached.expires - self.settings.refresh_seconds > self._clock():
                return cached
            base = (
                base_credentials(await ctx.resolve_secret(self.settings.credentials))
                if self.settings.credentials
                else {}
            )
            try:
                creds = await asyncio.to_thread(self._assume_sync, arn, key[1], base, ctx.timeout)
            except Exception as exc:
                err = client_error(exc)
                if err is None:
                    raise
                self._errors[arn] = f"AssumeRole {arn} failed: {err['error']}"
                raise AssumeFailed(arn, err) from None
            self._errors.pop(arn, None)
            assumed = Assumed(
                creds["AccessKeyId"],
                creds["SecretAccessKey"],
                creds["SessionToken"],
                creds["Expiration"].timestamp(),
            )
            self._evict()
            self._cache[key] = assumed
            return assumed

    def _assume_sync(
        self, arn: str, session: str, base: dict[str, str], timeout: float
    ) -> dict[str, Any]:
        import boto3
        from botocore.config import Config

        s = self.settings
        sts = boto3.session.Session(region_name=s.region, **base).client(
            "sts",
            endpoint_url=s.endpoint_url,
            config=Config(connect_timeout=s.connect_timeout_seconds, read_timeout=timeout),
        )
        kwargs: dict[str, Any] = {
            "RoleArn": arn,
            "RoleSessionName": session,
            "DurationSeconds": s.session_seconds,
        }
        if s.external_id:
            kwargs["ExternalId"] = s.external_id
        creds: dict[str, Any] = sts.assume_role(**kwargs)["Credentials"]
        return creds

    async def _calls(self, tool: str, args: dict[str, Any], ctx: CallContext) -> Calls:
        if tool not in self._tools or not self.settings.enabled:
            raise ValidationFailed(f"unknown or disabled aws tool {tool!r}")
        errors = sorted(self._validators[tool].iter_errors(args), key=lambda e: list(e.path))
        if errors:
            raise ValidationFailed(
                f"arguments do not match {tool}'s schema",
                errors=[
                    {"field": "/".join(map(str, e.path)) or "(root)", "message": e.message}
                    for e in errors[:20]
                ],
            )
        region = str(args.get("region") or self.settings.region)
        if region != self.settings.region and region not in self.settings.regions:
            raise Forbidden(f"region {region} is not allowed (tools.aws.region / regions)")
        arn = self.role_for(tool)
        creds = await self._assume(arn, ctx)
        return Calls(self.settings, creds, region, self._tools[tool].risk == "read", ctx.timeout)

    # --- the seam ----------------------------------------------------------------------

    async def call(self, tool: str, args: dict[str, Any], ctx: CallContext) -> ToolResult:
        handler: Handler | None = getattr(self, "_" + tool.partition(".")[2], None)
        if handler is None or tool not in self._tools:
            raise ValidationFailed(f"unknown aws tool {tool!r}")
        self._precheck(tool, args)
        try:
            calls = await self._calls(tool, args, ctx)
            content, meta = await handler(calls, args)
        except AssumeFailed as exc:
            return ToolResult(exc.content(), is_error=True)
        except Exception as exc:
            err = client_error(exc)
            if err is None:
                raise
            if err["error"] in ("ExpiredToken", "ExpiredTokenException"):
                self._cache.pop((self.role_for(tool), self.session_name(ctx)), None)
            return ToolResult(err, is_error=True)
        return ToolResult(content, is_error=bool(meta.pop("is_error", False)), meta=meta)

    async def dry_run(
        self, tool: str, args: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any] | None:
        if tool != "aws.ecs_update_desired_count":
            return None
        try:
            svc = await self._ecs_service(await self._calls(tool, args, ctx), args)
        except AssumeFailed as exc:
            return exc.content()
        except Exception as exc:
            err = client_error(exc)
            if err is None:
                raise
            return err
        if svc is None:
            return {"error": "ServiceNotFound", "service": args["service"]}
        cur = int(svc["desiredCount"])
        return {
            "cluster": args["cluster"],
            "service": args["service"],
            "current": {"desired_count": cur, "running_count": svc.get("runningCount")},
            "desired": {"desired_count": args["desired_count"]},
            "change": args["desired_count"] - cur,
        }

    def _precheck(self, tool: str, args: dict[str, Any]) -> None:
        """Refusals that need no AWS request: document allow-list, payload size."""
        if tool == "aws.ssm_send_command":
            self._check_document(str(args.get("document_name", "")))
        if tool == "aws.lambda_invoke":
            size = len(orjson.dumps(args.get("payload", {})))
            cap = self.settings.lambda_payload_max_bytes
            if size > cap:
                raise ValidationFailed(f"Lambda payload is {size} bytes; the limit is {cap}")

    def _check_document(self, name: str) -> None:
        if name not in self.settings.ssm_documents:
            raise Forbidden(
                f"SSM document {name!r} is not in tools.aws.ssm_documents "
                f"({', '.join(self.settings.ssm_documents) or 'empty'})"
            )

    # --- EC2 ---------------------------------------------------------------------------

    async def _ec2_describe_instances(self, aws: Calls, args: dict[str, Any]) -> Out:
        kw: dict[str, Any] = {}
        if args.get("instance_ids"):
            kw["InstanceIds"] = args["instance_ids"]
        else:  # MaxResults may not be combined with InstanceIds
            kw["MaxResults"] = args.get("max_results", 50)
        if args.get("states"):
            kw["Filters"] = [{"Name": "instance-state-name", "Values": args["states"]}]
        r = await aws("ec2", "describe_instances", **kw)
        out = [instance(i) for res in r.get("Reservations", []) for i in res.get("Instances", [])]
        more = bool(r.get("NextToken"))
        return {"region": aws.region, "count": len(out), "instances": out, "more": more}, {}

    async def _ec2_start_instances(self, aws: Calls, args: dict[str, Any]) -> Out:
        r = await aws("ec2", "start_instances", InstanceIds=args["instance_ids"])
        return transitions(aws.region, r.get("StartingInstances", []))

    async def _ec2_stop_instances(self, aws: Calls, args: dict[str, Any]) -> Out:
        r = await aws("ec2", "stop_instances", InstanceIds=args["instance_ids"])
        return transitions(aws.region, r.get("StoppingInstances", []))

    async def _ec2_reboot_instances(self, aws: Calls, args: dict[str, Any]) -> Out:
        await aws("ec2", "reboot_instances", InstanceIds=args["instance_ids"])
        return {"region": aws.region, "rebooting": args["instance_ids"]}, {}

    # --- ECS ---------------------------------------------------------------------------

    async def _ecs_describe_services(self, aws: Calls, args: dict[str, Any]) -> Out:
        r = await aws(
            "ecs", "describe_services", cluster=args["cluster"], services=args["services"]
        )
        services = [service(s) for s in r.get("services", [])]
        failures = [{"arn": f.get("arn"), "reason": f.get("reason")} for f in r.get("failures", [])]
        return {"cluster": args["cluster"], "services": services, "failures": failures}, {}

    async def _ecs_service(self, aws: Calls, args: dict[str, Any]) -> dict[str, Any] | None:
        r = await aws(
            "ecs", "describe_services", cluster=args["cluster"], services=[args["service"]]
        )
        found = [s for s in r.get("services", []) if s.get("status") != "INACTIVE"]
        return found[0] if found else None

    async def _ecs_update_desired_count(self, aws: Calls, args: dict[str, Any]) -> Out:
        svc = await self._ecs_service(aws, args)
        if svc is None:
            err = {"error": "ServiceNotFound", "service": args["service"]}
            return err, {"is_error": True}
        prior = int(svc["desiredCount"])
        r = await aws(
            "ecs",
            "update_service",
            cluster=args["cluster"],
            service=args["service"],
            desiredCount=args["desired_count"],
        )
        content = {
            "cluster": args["cluster"],
            "service": args["service"],
            "prior_desired_count": prior,
            "desired_count": r["service"]["desiredCount"],
        }
        return content, {"prior": {"desired_count": prior}}

    # --- Lambda ------------------------------------------------------------------------

    async def _lambda_list_functions(self, aws: Calls, args: dict[str, Any]) -> Out:
        r = await aws("lambda", "list_functions", MaxItems=args.get("max_items", 50))
        functions = [
            {
                "name": f.get("FunctionName"),
                "runtime": f.get("Runtime"),
                "memory_mb": f.get("MemorySize"),
                "timeout_s": f.get("Timeout"),
                "last_modified": f.get("LastModified"),
            }
            for f in r.get("Functions", [])
        ]
        return {"region": aws.region, "functions": functions, "more": bool(r.get("NextMarker"))}, {}

    async def _lambda_invoke(self, aws: Calls, args: dict[str, Any]) -> Out:
        self._precheck("aws.lambda_invoke", args)
        kw: dict[str, Any] = {
            "FunctionName": args["function_name"],
            "InvocationType": args.get("invocation_type", "RequestResponse"),
            "Payload": orjson.dumps(args.get("payload", {})),
        }
        if args.get("qualifier"):
            kw["Qualifier"] = args["qualifier"]
        r = await aws("lambda", "invoke", **kw)
        raw = await asyncio.to_thread(r["Payload"].read, MAX_RESULT_PAYLOAD + 1)
        body: Any
        try:
            body = orjson.loads(raw) if len(raw) <= MAX_RESULT_PAYLOAD else None
        except orjson.JSONDecodeError:
            body = None
        if body is None:
            body = raw[:MAX_RESULT_PAYLOAD].decode(errors="replace")
        content = {
            "function": args["function_name"],
            "status_code": r.get("StatusCode"),
            "function_error": r.get("FunctionError"),
            "executed_version": r.get("ExecutedVersion"),
            "payload": body,
            "payload_truncated": len(raw) > MAX_RESULT_PAYLOAD,
        }
        return content, {"is_error": bool(r.get("FunctionError"))}

    # --- RDS ---------------------------------------------------------------------------

    async def _rds_describe_db_instances(self, aws: Calls, args: dict[str, Any]) -> Out:
        kw: dict[str, Any] = {"MaxRecords": args.get("max_records", 100)}
        if args.get("db_instance_identifier"):
            kw["DBInstanceIdentifier"] = args["db_instance_identifier"]
        r = await aws("rds", "describe_db_instances", **kw)
        dbs = [db(d) for d in r.get("DBInstances", [])]
        return {"region": aws.region, "db_instances": dbs, "more": bool(r.get("Marker"))}, {}

    async def _rds_reboot_db_instance(self, aws: Calls, args: dict[str, Any]) -> Out:
        kw: dict[str, Any] = {"DBInstanceIdentifier": args["db_instance_identifier"]}
        if args.get("force_failover"):
            kw["ForceFailover"] = True
        r = await aws("rds", "reboot_db_instance", **kw)
        return {"region": aws.region, "db_instance": db(r["DBInstance"])}, {}

    # --- SSM and CloudWatch ------------------------------------------------------------

    async def _ssm_send_command(self, aws: Calls, args: dict[str, Any]) -> Out:
        self._check_document(args["document_name"])
        kw: dict[str, Any] = {
            "DocumentName": args["document_name"],
            "InstanceIds": args["instance_ids"],
            "TimeoutSeconds": args.get("timeout_seconds", 3600),
        }
        if args.get("parameters"):
            kw["Parameters"] = args["parameters"]
        if args.get("comment"):
            kw["Comment"] = args["comment"]
        c = (await aws("ssm", "send_command", **kw))["Command"]
        content = {
            "region": aws.region,
            "command_id": c.get("CommandId"),
            "document": c.get("DocumentName"),
            "instance_ids": c.get("InstanceIds"),
            "status": c.get("Status"),
            "requested_at": iso(c.get("RequestedDateTime")),
        }
        return content, {}

    async def _cloudwatch_describe_alarms(self, aws: Calls, args: dict[str, Any]) -> Out:
        kw: dict[str, Any] = {"MaxRecords": args.get("max_records", 50)}
        if args.get("alarm_name_prefix"):
            kw["AlarmNamePrefix"] = args["alarm_name_prefix"]
        if args.get("state_value"):
            kw["StateValue"] = args["state_value"]
        r = await aws("cloudwatch", "describe_alarms", **kw)
        alarms = [
            {
                "name": a.get("AlarmName"),
                "state": a.get("StateValue"),
                "reason": str(a.get("StateReason", ""))[:300],
                "metric": a.get("MetricName"),
                "namespace": a.get("Namespace"),
                "updated": iso(a.get("StateUpdatedTimestamp")),
            }
            for a in r.get("MetricAlarms", [])
        ]
        return {"region": aws.region, "alarms": alarms, "more": bool(r.get("NextToken"))}, {}
