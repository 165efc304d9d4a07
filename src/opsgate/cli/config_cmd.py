"""`opsgate config check`."""

from __future__ import annotations

import typer

from opsgate.cli.common import ConfigOpt, DataDirOpt, settings_or_exit

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("check")
def check(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Validate the configuration; print every problem with its key path (exit 2)."""
    settings = settings_or_exit(config, data_dir)
    typer.echo(f"ok: mode={settings.mode} database={settings.database_url.split('://')[0]}")
