"""`opsgate guard scan`: the guard as a command-line tool (no database, no server)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, cast

import orjson
import typer

from opsgate.cli.common import ConfigOpt, DataDirOpt, settings_or_exit
from opsgate.errors import ConfigError, OpsGateError
from opsgate.guard.core import Guard
from opsgate.guard.custom import CustomRule, RuleSetIn, check_rules
from opsgate.guard.findings import DIRECTIONS, Direction, ScanContext
from opsgate.guard.service import guard_hash_key, load_ner
from opsgate.settings import Settings, read_yaml

app = typer.Typer(help="Scan text for PII, secrets and prompt injection.", no_args_is_help=True)

_MAX_LINE = 16 * 1024 * 1024


def _hash_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return guard_hash_key(settings.secret_key.get_secret_value().encode())
    keyfile = settings.data_dir / "secret.key"
    return guard_hash_key(keyfile.read_bytes()) if keyfile.is_file() else b""


def _custom(path: Path | None, settings: Settings) -> list[CustomRule]:
    if path is None:
        return []
    parsed = RuleSetIn.model_validate(read_yaml(path))
    problems = check_rules(parsed.rules, settings.guard)
    if problems:
        raise ConfigError([(f"{path}: {p['field']}", p["message"]) for p in problems])
    return parsed.rules


def _build(config: Path | None, data_dir: Path | None, rules: Path | None) -> Guard:
    settings = settings_or_exit(config, data_dir)
    try:
        detectors, note = load_ner(settings.guard)
        return Guard(
            settings.guard, hash_key=_hash_key(settings), custom=_custom(rules, settings),
            tenant="cli", detectors=detectors, ner_note=note,
        )  # fmt: skip
    except ConfigError as exc:
        for where, reason in exc.problems:
            typer.echo(f"config error: {where}: {reason}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # NER model failures and invalid rule files, reported plainly
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _open(source: str) -> BinaryIO:
    if source == "-":
        return sys.stdin.buffer
    try:
        return Path(source).open("rb")
    except OSError as exc:
        typer.echo(f"error: cannot read {source}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


def _write(obj: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")
    sys.stdout.buffer.flush()


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        line = stream.readline(_MAX_LINE + 1)
        if not line:
            return
        if len(line) > _MAX_LINE and not line.endswith(b"\n"):
            # Skip the rest of an over-long line so the next one starts cleanly.
            while (more := stream.readline(_MAX_LINE)) and not more.endswith(b"\n"):
                pass
            yield b"\x00too-long"
            continue
        yield line


def _scan_line(guard: Guard, raw: bytes, ctx: ScanContext, redact: bool) -> dict[str, Any]:
    if raw == b"\x00too-long":
        return {"error": f"line longer than {_MAX_LINE} bytes"}
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return {"error": f"not valid JSON (or not UTF-8): {exc}"}
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return {"error": 'each line must be a JSON object with a string "text" field'}
    text = obj["text"]
    try:
        result, applied = guard.redact(text, ctx) if redact else (guard.scan(text, ctx), None)
    except OpsGateError as exc:
        return {"error": exc.detail}
    out: dict[str, Any] = {"findings": [f.public() for f in result.findings]}
    if applied is not None:
        out["text"] = applied.text
    return out


def _scan_jsonl(guard: Guard, stream: BinaryIO, ctx: ScanContext, redact: bool) -> int:
    failed = 0
    for raw in _lines(stream):
        if not raw.strip():
            continue
        out = _scan_line(guard, raw, ctx, redact)
        failed += "error" in out
        _write(out)
    return failed


def _read_text(stream: BinaryIO, limit: int) -> str:
    data = stream.read(limit * 4 + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        typer.echo(f"error: input is not valid UTF-8 (byte {exc.start})", err=True)
        raise typer.Exit(1) from None
    if len(text) > limit:
        typer.echo(f"error: input is longer than {limit} characters", err=True)
        raise typer.Exit(1)
    return text


@app.command("scan")
def scan(
    source: Annotated[str, typer.Argument(help="File to scan, or - for standard input.")] = "-",
    redact: Annotated[bool, typer.Option("--redact", help="Print the redacted text.")] = False,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Input is JSON lines; scan each line's `text`.")
    ] = False,
    direction: Annotated[
        str, typer.Option("--direction", help=f"One of: {', '.join(DIRECTIONS)}.")
    ] = "prompt",
    rules: Annotated[
        Path | None, typer.Option("--rules", help="YAML file of custom rules (`rules:` list).")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print JSON findings (type, start, end, score, detector) for FILE or stdin."""
    if direction not in DIRECTIONS:
        typer.echo(f"error: --direction must be one of {', '.join(DIRECTIONS)}", err=True)
        raise typer.Exit(2)
    guard = _build(config, data_dir, rules)
    ctx = ScanContext(direction=cast(Direction, direction))
    stream = _open(source)
    try:
        if jsonl:
            failed = _scan_jsonl(guard, stream, ctx, redact)
            if failed:
                typer.echo(f"{failed} line(s) could not be scanned", err=True)
                raise typer.Exit(1)
            return
        text = _read_text(stream, guard.settings.max_text_chars)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    _scan_whole(guard, text, ctx, redact)


def _scan_whole(guard: Guard, text: str, ctx: ScanContext, redact: bool) -> None:
    if not redact:
        r = guard.scan(text, ctx)
        _write({"findings": [f.public() for f in r.findings], "classification": r.classification,
                "injection_score": r.injection_score, "ner": r.ner, "notes": r.notes})  # fmt: skip
        return
    _result, applied = guard.redact(text, ctx)
    if applied.blocked:
        typer.echo(f"blocked: {applied.block_reason()}", err=True)
        raise typer.Exit(3)
    sys.stdout.write(applied.text)
    sys.stdout.flush()
