"""`opsgate policy test|eval|check`: work on a bundle directory, no server needed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import orjson
import typer

from opsgate.audit.base import MemoryAuditor
from opsgate.cli.common import echo_json
from opsgate.policy.bundle import (
    BundleError,
    BundleFiles,
    compile_engine,
    probe,
    read_bundle,
    resolve_dir,
)
from opsgate.policy.engines import EmbeddedEngine
from opsgate.policy.service import PolicyService
from opsgate.policy.settings import PolicySettings
from opsgate.policy.testing import run_tests

app = typer.Typer(help="Rego policies: test, evaluate, check.", no_args_is_help=True)
BundleOpt = Annotated[
    Path | None, typer.Option("--bundle", help="Bundle directory (default: shipped).")
]


def _load(bundle: Path | None) -> tuple[PolicySettings, BundleFiles]:
    s = PolicySettings(bundle_dir=str(bundle) if bundle else "")
    try:
        return s, read_bundle(resolve_dir(s.bundle_dir), s.max_file_bytes, s.max_lines)
    except BundleError as exc:
        for where, what in exc.problems:
            typer.echo(f"error: {where}: {what}", err=True)
        raise typer.Exit(2) from None


@app.command("test")
def test(bundle: BundleOpt = None) -> None:
    """Run the bundle's tests (test_* rules and `cases`); exit 1 if any fails."""
    _, b = _load(bundle)
    try:
        results = run_tests(b)
    except BundleError as exc:
        for where, what in exc.problems:
            typer.echo(f"error: {where}: {what}", err=True)
        raise typer.Exit(2) from None
    for r in results:
        typer.echo(f"{'PASS' if r.ok else 'FAIL'} {r.name}{'' if r.ok else ': ' + r.message}")
    failed = sum(not r.ok for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed or not results:
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    input_file: Annotated[Path, typer.Option("--input", help="Decision input JSON file.")],
    bundle: BundleOpt = None,
) -> None:
    """Print the decision (allow, reasons, obligations) for an input document."""
    s, b = _load(bundle)
    try:
        doc = orjson.loads(input_file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"error: {input_file}: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(doc, dict):
        typer.echo("error: the input must be a JSON object", err=True)
        raise typer.Exit(2)
    svc = PolicyService(s, MemoryAuditor(), EmbeddedEngine(b))
    decision = asyncio.run(svc.decide_document(doc))
    echo_json(decision.as_dict())
    if not decision.allow:
        raise typer.Exit(1)


@app.command("check")
def check(bundle: BundleOpt = None) -> None:
    """Parse and probe the bundle; errors name file and line (exit 2)."""
    s, b = _load(bundle)
    try:
        compile_engine(b, include_tests=True)
        probe(b, s.probe_timeout_seconds, s.max_file_bytes, s.max_lines)
    except BundleError as exc:
        for where, what in exc.problems:
            typer.echo(f"error: {where}: {what}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"ok: revision {b.revision}")
