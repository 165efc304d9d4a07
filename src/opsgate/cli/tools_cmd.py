"""`opsgate tools list|call|executions|undo`: the tool catalog, as yourself, over REST.

Calls go through the same governed pipeline as MCP: policy, guard, gates and audit judge
your credential. `undo` runs a write tool's inverse with the recorded prior state.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from opsgate.cli.common import echo_json
from opsgate.cli.rest import KeyOpt, UrlOpt, call

app = typer.Typer(help="Governed tools: list, call, executions, undo.", no_args_is_help=True)
DEFAULT_URL = "http://127.0.0.1:8080"


@app.command("list")
def list_(url: UrlOpt = DEFAULT_URL, key: KeyOpt = "") -> None:
    """The tools you may call."""
    for t in call("GET", url, key, "/api/v1/tools"):
        typer.echo(f"{t['name']:34} {t['risk']:11} {t['gate']}  {t['zone']}")


@app.command("call")
def call_(
    name: str,
    args: Annotated[str, typer.Option("--args", help="Arguments as a JSON object.")] = "{}",
    rationale: Annotated[str, typer.Option("--rationale")] = "",
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for approval.")] = 0,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = "",
) -> None:
    """Call a tool; L2 operations wait for approval (or print the approval id)."""
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --args is not valid JSON: {exc.msg} at {exc.pos}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(arguments, dict):
        typer.echo("error: --args must be a JSON object", err=True)
        raise typer.Exit(2)
    body = {"arguments": arguments, "rationale": rationale, "wait_seconds": wait}
    echo_json(call("POST", url, key, f"/api/v1/tools/{name}/call", body, timeout=30 + wait))


@app.command("connectors")
def connectors(url: UrlOpt = DEFAULT_URL, key: KeyOpt = "") -> None:
    """Connector status: ready, disabled, or failed and why (admin, operator, auditor)."""
    for c in call("GET", url, key, "/api/v1/tools/connectors"):
        why = f"  ({c['reason']})" if c["reason"] else ""
        typer.echo(f"{c['name']:20} {c['state']:9} {c['tools']:3} tools{why}")


@app.command("executions")
def executions(url: UrlOpt = DEFAULT_URL, key: KeyOpt = "") -> None:
    """Recent executions of write tools (id, tool, status, undo state)."""
    for e in call("GET", url, key, "/api/v1/tools/executions"):
        undo = f"undone by {e['undone_by']}" if e["undone_by"] else ""
        typer.echo(f"{e['id']}  {e['status']:8} {e['tool']:34} by {e['actor']}  {undo}")


@app.command("undo")
def undo(
    execution_id: str,
    rationale: Annotated[str, typer.Option("--rationale")] = "",
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = "",
) -> None:
    """Undo an execution: its inverse runs through the same gates (may need approval)."""
    body = {"rationale": rationale}
    echo_json(call("POST", url, key, f"/api/v1/tools/executions/{execution_id}/undo", body))
