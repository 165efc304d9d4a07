"""`opsgate config check|show`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml
from pydantic import SecretStr

from opsgate.cli.common import ConfigOpt, DataDirOpt, settings_or_exit

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("check")
def check(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Validate the configuration; print every problem with its key path (exit 2)."""
    settings = settings_or_exit(config, data_dir)
    typer.echo(f"ok: mode={settings.mode} database={settings.database_url.split('://')[0]}")


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@app.command("show")
def show(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    section: Annotated[str | None, typer.Argument(help="Only this top-level section.")] = None,
) -> None:
    """Print the effective configuration as YAML (secrets masked)."""
    settings = settings_or_exit(config, data_dir)
    data = _plain(settings.model_dump(mode="python", exclude={"config_file"}))
    data = {k: (str(v) if k == "data_dir" else v) for k, v in data.items()}
    if section:
        if section not in data:
            typer.echo(f"unknown section {section!r}; sections: {', '.join(data)}", err=True)
            raise typer.Exit(2)
        data = {section: data[section]}
    typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


@app.command("reference")
def reference() -> None:
    """Print the configuration reference (Markdown) for every setting."""
    from opsgate.settings_doc import render

    typer.echo(render(), nl=False)
