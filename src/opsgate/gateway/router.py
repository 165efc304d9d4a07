"""Route choice: which deployments of a logical model may serve this request, in what order.

Filters, each with a reason kept for the audit event: capabilities, data classification
(restricted -> in-tenant only), context window, cost ceiling, kill switch, breaker/bulkhead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opsgate.errors import BadRequest, Forbidden, Unavailable
from opsgate.gateway.health import HealthBoard
from opsgate.gateway.settings import DeploymentSettings, ModelSettings


@dataclass(slots=True)
class Needs:
    """What the request requires of a deployment."""

    capabilities: frozenset[str]
    input_tokens: int
    max_output_tokens: int


@dataclass(slots=True)
class RoutePlan:
    model: str
    candidates: list[DeploymentSettings]
    skipped: list[str] = field(default_factory=list)


def estimate_cost(dep: DeploymentSettings, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * dep.price_in_per_1m + output_tokens * dep.price_out_per_1m) / 1e6


def _order(
    model: ModelSettings,
    deps: list[DeploymentSettings],
    needs: Needs,
    health: HealthBoard,
    rng: random.Random,
) -> list[DeploymentSettings]:
    if model.strategy == "weighted":
        pool, out = list(deps), []
        while pool:
            weights = [max(d.weight, 1e-9) for d in pool]
            pick = rng.choices(range(len(pool)), weights=weights)[0]
            out.append(pool.pop(pick))
        return out
    if model.strategy == "lowest_latency":
        # Unmeasured deployments sort first so they get measured.
        return sorted(deps, key=lambda d: health.get(d.name).ewma_s or 0.0)
    if model.strategy == "lowest_cost":
        return sorted(
            deps, key=lambda d: estimate_cost(d, needs.input_tokens, needs.max_output_tokens)
        )
    return list(deps)


def plan_route(
    name: str,
    model: ModelSettings,
    needs: Needs,
    *,
    in_tenant_only: bool,
    max_cost: float | None,
    health: HealthBoard,
    killed: Callable[[str], bool],
    rng: random.Random,
) -> RoutePlan:
    """Candidate deployments in try order; raises with a precise reason when there are none."""
    skipped: list[str] = []
    deps = list(model.deployments)

    def keep(pred: Callable[[DeploymentSettings], bool], why: str) -> list[DeploymentSettings]:
        out = []
        for d in deps:
            if pred(d):
                out.append(d)
            else:
                skipped.append(f"{d.name}:{why}")
        return out

    deps = keep(lambda d: needs.capabilities <= d.capabilities, "capability")
    if not deps:
        missing = sorted(
            needs.capabilities - set().union(*(d.capabilities for d in model.deployments))
        )
        raise BadRequest(
            f"model {name} does not support: {', '.join(missing) or 'this request'}",
            code="unsupported_capability",
        )
    if in_tenant_only:
        deps = keep(lambda d: d.location == "in_tenant", "external")
        if not deps:
            raise Forbidden(
                f"this request carries restricted data and model {name} has no in-tenant "
                "deployment; it was not sent anywhere",
                code="route_refused",
            )
    deps = keep(lambda d: needs.input_tokens <= d.context_window, "context")
    if not deps:
        raise BadRequest(
            f"the prompt (~{needs.input_tokens} tokens) exceeds every deployment's context window",
            code="context_length_exceeded",
        )
    if max_cost is not None:
        deps = keep(
            lambda d: estimate_cost(d, needs.input_tokens, needs.max_output_tokens) <= max_cost,
            "cost",
        )
        if not deps:
            raise Forbidden(
                f"every deployment of {name} exceeds the cost ceiling of ${max_cost:g} per request",
                code="cost_ceiling",
            )
    deps = keep(lambda d: not killed(d.name), "killed")
    now = time.monotonic()
    deps = keep(lambda d: health.get(d.name).available(now), "unhealthy")
    if not deps:
        detail = "in-tenant " if in_tenant_only else ""
        raise Unavailable(
            f"no healthy {detail}deployment of {name} is available "
            f"({', '.join(skipped)}); try again later",
            code="no_healthy_deployment",
            headers={"Retry-After": "5"},
        )
    return RoutePlan(name, _order(model, deps, needs, health, rng), skipped)
