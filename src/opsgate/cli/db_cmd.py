"""`opsgate db upgrade|current`."""

from __future__ import annotations

import typer

from opsgate.cli.common import ConfigOpt, DataDirOpt, run, settings_or_exit
from opsgate.db import migrate

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply all migrations (and, on PostgreSQL, the application role's grants)."""
    s = settings_or_exit(config, data_dir)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app_role = s.database.app_role if s.database.admin_url else None
    run(migrate.upgrade(s.database_admin_url, app_role))
    revs = run(migrate.current_revisions(s.database_admin_url))
    typer.echo("database at " + ", ".join(sorted(revs)))


@app.command("current")
def current(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the applied revisions."""
    s = settings_or_exit(config, data_dir)
    revs = run(migrate.current_revisions(s.database_admin_url))
    typer.echo(", ".join(sorted(revs)) or "(empty)")
