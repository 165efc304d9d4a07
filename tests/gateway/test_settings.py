"""Catalog validation: upstream URLs and credentials only in an acceptable form."""

from __future__ import annotations

from typing import Any

import pytest

from opsgate.errors import ConfigError
from opsgate.settings import load_settings


def _load(tmp_path: Any, dep: dict[str, Any]) -> Any:
    base = {"name": "d", "provider": "openai", "model": "m"}
    return load_settings(
        None, data_dir=tmp_path, gateway={"models": {"m": {"deployments": [{**base, **dep}]}}}
    )


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://x",
        "ftp://h/v1",
        "//host/v1",
        "http://u:p@h/v1",
        "http://h/v1?x=1",
        "javascript:alert(1)",
    ],
)
def test_bad_base_urls_refused(tmp_path: Any, url: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"base_url": url})
    assert "base_url" in str(info.value)


def test_literal_api_key_refused(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"base_url": "https://api.openai.com/v1", "api_key": "sk-live-123"})
    assert "secret://" in str(info.value)
    assert "sk-live-123" not in str(info.value)


def test_missing_base_url_and_region(tmp_path: Any) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, {})
    with pytest.raises(ConfigError):
        _load(tmp_path, {"provider": "bedrock"})


def test_unknown_keys_refused(tmp_path: Any) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, {"base_url": "https://x/v1", "api_bas": "typo"})


def test_same_deployment_twice_must_match(tmp_path: Any) -> None:
    d = {"name": "d", "provider": "openai", "model": "m", "base_url": "https://x/v1"}
    with pytest.raises(ConfigError):
        load_settings(
            None,
            data_dir=tmp_path,
            gateway={
                "models": {
                    "a": {"deployments": [d]},
                    "b": {"deployments": [{**d, "model": "other"}]},
                }
            },
        )
    ok = load_settings(
        None,
        data_dir=tmp_path,
        gateway={"models": {"a": {"deployments": [d]}, "b": {"deployments": [d]}}},
    )
    assert set(ok.gateway.models) == {"a", "b"}


def test_yaml_example_from_docs_loads(tmp_path: Any) -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "gateway.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = tmp_path / "opsgate.yaml"
    cfg.write_text(block)
    s = load_settings(cfg, data_dir=tmp_path)
    assert "ops-default" in s.gateway.models
    assert s.gateway.models["confidential-chat"].deployments[0].location == "in_tenant"
