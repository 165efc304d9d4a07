from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from opsgate.cli.main import app

runner = CliRunner()


def test_config_check_ok(tmp_path: Path) -> None:
    r = runner.invoke(app, ["config", "check", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "mode=embedded" in r.output


def test_config_check_reports_key_paths_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("server:\n  port: -1\ndatabase:\n  pool_size: x\n")
    r = runner.invoke(app, ["config", "check", "--config", str(cfg), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "server.port" in r.output and "database.pool_size" in r.output


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("secret_key: super-secret-canary-value-0123456789abcdef\n")
    r = runner.invoke(app, ["config", "show", "--config", str(cfg), "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "super-secret-canary" not in r.output
    assert "server:" in r.output


def test_config_show_unknown_section(tmp_path: Path) -> None:
    r = runner.invoke(app, ["config", "show", "nope", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        r = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
        assert r.exit_code == 0, r.output
    assert (tmp_path / "opsgate.db").exists()


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md must list every setting: regenerate with
    `uv run opsgate config reference > docs/configuration.md`."""
    from opsgate.settings_doc import render, rows

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    missing = [path for path, *_ in rows() if f"`{path}`" not in doc]
    assert not missing, f"undocumented settings: {missing}"
    assert doc == render()
