from __future__ import annotations

from pathlib import Path

import pytest

from opsgate.errors import ConfigError
from opsgate.settings import load_settings


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = load_settings(None, data_dir=tmp_path)
    assert s.mode == "embedded"
    assert s.is_sqlite
    assert s.database_url.endswith(str(tmp_path / "opsgate.db"))


def test_yaml_then_env_then_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: 9000\n  host: 0.0.0.0\ndatabase:\n  pool_size: 5\n")
    monkeypatch.setenv("OPSGATE_SERVER__PORT", "9100")
    s = load_settings(cfg, data_dir=tmp_path)
    # env beats file for the same key; other file keys in the same section survive.
    assert s.server.port == 9100
    assert s.server.host == "0.0.0.0"
    assert s.database.pool_size == 5
    s2 = load_settings(cfg, data_dir=tmp_path, server={"port": 9200})
    assert s2.server.port == 9200


def test_every_problem_reported_with_key_path(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: 70000\n  bogus: 1\ndatabase:\n  pool_size: 0\nnope: x\n")
    with pytest.raises(ConfigError) as ei:
        load_settings(cfg, data_dir=tmp_path)
    paths = {p for p, _ in ei.value.problems}
    assert {"server.port", "server.bogus", "database.pool_size", "nope"} <= paths


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: 1\n   bad: [\n")
    with pytest.raises(ConfigError) as ei:
        load_settings(cfg, data_dir=tmp_path)
    where, _ = ei.value.problems[0]
    assert where.startswith(str(cfg) + ":")


def test_yaml_top_level_must_be_mapping(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(cfg, data_dir=tmp_path)


@pytest.mark.parametrize("secret", [None, "changeme", "short-but-not-default"])
def test_production_refuses_default_secrets(tmp_path: Path, secret: str | None) -> None:
    with pytest.raises(ConfigError) as ei:
        load_settings(
            None,
            data_dir=tmp_path,
            mode="production",
            secret_key=secret,
            database={"url": "postgresql+asyncpg://u@h/db"},
        )
    assert any(p == "secret_key" for p, _ in ei.value.problems)


def test_production_needs_postgres(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_settings(None, data_dir=tmp_path, mode="production", secret_key="x" * 40)
    assert any(p == "database.url" for p, _ in ei.value.problems)


def test_production_ok(tmp_path: Path) -> None:
    s = load_settings(
        None,
        data_dir=tmp_path,
        mode="production",
        secret_key="k" * 40,
        database={"url": "postgresql+asyncpg://u@h/db"},
    )
    assert s.mode == "production"
    assert "k" * 40 not in repr(s)
