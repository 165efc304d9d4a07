"""Limits configuration: merge semantics, subject resolution, bad input, memory bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opsgate.errors import ConfigError
from opsgate.gateway.quota.limits import LimitResolver
from opsgate.gateway.quota.memory import MemoryQuotaBackend
from opsgate.gateway.quota.reservation import period_bounds
from opsgate.gateway.quota.service import QuotaService
from opsgate.gateway.quota.settings import Limits, QuotaSettings
from opsgate.settings import load_settings
from tests.gateway.quota.conftest import principal

YAML = """
gateway:
  quota:
    defaults:
      key: {rpm: 60, tpm: 100000, concurrency: 4, budget: {amount: 50, period: month}}
      user: {rpm: 120}
      team: {budget: {amount: 500, period: month}}
    keys:
      ci-bot: {rpm: 600, budget: null}
    teams:
      sre: {concurrency: 20}
    tenants:
      default: {budget: {amount: 5000, period: month}}
"""


def test_yaml_example_from_the_docs_loads_and_merges(tmp_path: Path) -> None:
    f = tmp_path / "opsgate.yaml"
    f.write_text(YAML)
    q = load_settings(f, data_dir=tmp_path).gateway.quota
    r = LimitResolver(q)
    # An override wins field by field; null means unlimited; the rest is inherited.
    assert r.limits("key", "ci-bot") == Limits(rpm=600, tpm=100000, concurrency=4, budget=None)
    assert r.limits("key", "other").rpm == 60  # type: ignore[union-attr]
    sre = r.limits("team", "sre")
    assert sre is not None and sre.concurrency == 20 and sre.budget is not None
    assert sre.budget.amount == 500
    assert r.limits("team", "unlisted") is None
    assert r.limits("tenant", "default").budget.amount == 5000  # type: ignore[union-attr]


def test_subjects_of_a_principal() -> None:
    s = QuotaSettings.model_validate(
        {
            "defaults": {"key": {"rpm": 1}, "user": {"rpm": 2}, "tenant": {"rpm": 3}},
            "teams": {"sre": {"rpm": 4}, "ops": {"rpm": 5}},
        }
    )
    r = LimitResolver(s)
    subs = r.subjects(principal(groups=("sre", "dev", "ops")))
    assert [(x.kind, x.name) for x in subs] == [
        ("key", "k-alice"),
        ("user", "alice"),
        ("team", "ops"),
        ("team", "sre"),
        ("tenant", "default"),
    ]
    # A JWT user has no key subject.
    assert [x.kind for x in r.subjects(principal(key=None))] == ["user", "tenant"]


def test_key_record_limits_sit_between_config_and_defaults() -> None:
    s = QuotaSettings.model_validate(
        {"defaults": {"key": {"rpm": 10, "tpm": 99}}, "keys": {"pinned": {"rpm": 1}}}
    )
    r = LimitResolver(s, key_limits=lambda p: Limits(rpm=500))
    [own] = [x for x in r.subjects(principal(key="k1")) if x.kind == "key"]
    assert (own.limits.rpm, own.limits.tpm) == (500, 99)
    [pinned] = [x for x in r.subjects(principal(key="pinned")) if x.kind == "key"]
    assert pinned.limits.rpm == 1


@pytest.mark.parametrize(
    ("quota", "path"),
    [
        ({"defaults": {"key": {"rpm": 0}}}, "gateway.quota.defaults.key.rpm"),
        ({"defaults": {"key": {"rpm": "lots"}}}, "gateway.quota.defaults.key.rpm"),
        ({"defaults": {"key": {"budget": {"amount": -1}}}}, "gateway.quota.defaults.key.budget"),
        ({"defaults": {"key": {"budget": {"amount": 1, "period": "week"}}}}, "period"),
        ({"defaults": {"key": {"rps": 5}}}, "gateway.quota.defaults.key.rps"),
        ({"teams": {"": {"rpm": 1}}}, "gateway.quota.teams"),
        ({"backend": "memcached"}, "gateway.quota.backend"),
        ({"redis_url": "http://redis:6379"}, "gateway.quota.redis_url"),
        ({"on_backend_error": "maybe"}, "gateway.quota.on_backend_error"),
        ({"key_prefix": "has space"}, "gateway.quota.key_prefix"),
        ({"killswitch": {"reload_seconds": 0}}, "gateway.quota.killswitch.reload_seconds"),
        ({"usage": {"queue_max": 1}}, "gateway.quota.usage.queue_max"),
    ],
)
def test_bad_limits_are_refused_with_their_key_path(
    quota: dict[str, Any], path: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(None, data_dir=tmp_path, gateway={"quota": quota})
    assert any(path in p for p, _ in exc.value.problems), exc.value.problems


def test_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGATE_GATEWAY__QUOTA__BACKEND", "redis")
    monkeypatch.setenv("OPSGATE_GATEWAY__QUOTA__ON_BACKEND_ERROR", "open")
    q = load_settings(None, data_dir=tmp_path).gateway.quota
    assert (q.backend, q.on_backend_error) == ("redis", "open")


def test_period_bounds_are_utc_calendar_periods() -> None:
    at = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert period_bounds("day", at) == ("2026-12-31", datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert period_bounds("month", at) == ("2026-12", datetime(2027, 1, 1, tzinfo=UTC).timestamp())


async def test_memory_entries_are_swept_but_current_budgets_kept() -> None:
    clock = [1000.0]
    backend = MemoryQuotaBackend(lease_seconds=60, clock=lambda: clock[0], sweep_seconds=5)
    s = QuotaSettings.model_validate(
        {"defaults": {"user": {"rpm": 60}}, "users": {"payer": {"budget": {"amount": 10}}}}
    )
    q = QuotaService(s, backend)
    for i in range(500):
        await q.release(
            await q.admit(principal(f"u{i}", None), model="m", est_tokens=1, est_cost=0)
        )
    res = await q.admit(principal("payer", None), model="m", est_tokens=1, est_cost=1.0)
    await q.settle(res, tokens_in=1, tokens_out=1, cost=1.0)
    assert backend.size == 501
    clock[0] += 120  # every rate entry is idle again
    backend.sweep()
    assert backend.size == 1  # the budget of this month is state that matters
    assert await q.budget_state(principal("payer", None), "user") == (1.0, 0.0)
