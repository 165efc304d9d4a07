"""Policy bundles: a directory of Rego files plus data.json, loaded into regorus.

A bundle is accepted only if every file parses (errors carry file:line), each file is within
the size bounds, and a probe evaluation of the decision finishes within a time limit in a
separate process. Regorus engines cannot be interrupted or moved between threads, so a policy
that explodes must be caught before it serves; the probe is that gate.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import regorus

from opsgate.errors import ConfigError

DECISION_RULE = "data.opsgate.decision"
DEFAULT_BUNDLE = Path(__file__).resolve().parents[3] / "policies"

PROBE_INPUTS: list[dict[str, Any]] = [
    {
        "principal": {
            "id": "probe",
            "kind": "user",
            "tenant": "default",
            "groups": ["g"],
            "roles": ["user"],
        },
        "action": "model.invoke",
        "resource": {"kind": "model", "name": "probe"},
        "context": {"hour": 12, "weekday": 3, "classification": "internal"},
    },
    {
        "principal": {
            "id": "probe",
            "kind": "agent",
            "tenant": "default",
            "groups": [],
            "roles": ["agent"],
        },
        "action": "tool.call",
        "resource": {
            "kind": "tool",
            "name": "probe.tool",
            "zone": "kubernetes",
            "risk": "destructive",
            "gate": "L1",
            "namespace": "prod",
        },
        "context": {"hour": 23, "weekday": 6},
    },
]


class BundleError(ConfigError):
    """A bundle that cannot serve; `problems` name file:line where known."""


@dataclass(frozen=True)
class BundleFiles:
    root: Path
    policies: dict[str, str]  # relative path -> source
    data: bytes
    revision: str

    @property
    def test_files(self) -> list[str]:
        return [p for p in self.policies if p.endswith("_test.rego")]


def resolve_dir(bundle_dir: str) -> Path:
    return Path(bundle_dir) if bundle_dir else DEFAULT_BUNDLE


def read_bundle(root: Path, max_file_bytes: int, max_lines: int) -> BundleFiles:
    if not root.is_dir():
        raise BundleError([(str(root), "policy bundle directory not found")])
    policies: dict[str, str] = {}
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.rego")):
        rel = str(path.relative_to(root))
        raw = path.read_bytes()
        if len(raw) > max_file_bytes or raw.count(b"\n") > max_lines:
            raise BundleError(
                [(rel, f"policy file exceeds {max_file_bytes} bytes / {max_lines} lines")]
            )
        try:
            policies[rel] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError([(rel, "not UTF-8")]) from None
        digest.update(rel.encode() + b"\0" + raw + b"\0")
    if not policies:
        raise BundleError([(str(root), "no .rego files")])
    data = b"{}"
    for data_file in sorted(root.rglob("data.json")):
        data = data_file.read_bytes()
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BundleError(
                [(str(data_file.relative_to(root)), f"invalid JSON: {exc}")]
            ) from None
        digest.update(b"data\0" + data)
    return BundleFiles(root, policies, data, digest.hexdigest()[:12])


def compile_engine(bundle: BundleFiles, include_tests: bool = False) -> regorus.Engine:
    """A ready engine for `bundle`. Raises BundleError naming file:line on parse errors."""
    engine = regorus.Engine()
    problem: tuple[str, str] | None = None
    for rel, src in bundle.policies.items():
        if rel.endswith("_test.rego") and not include_tests:
            continue
        try:
            engine.add_policy(rel, src)
        except RuntimeError as exc:
            problem = _parse_error(rel, str(exc))
            break
    if problem is not None:
        # Free the engine here, before raising: a regorus object may only be dropped on the
        # thread that made it, and an exception's traceback would otherwise keep it alive in
        # this frame until some garbage collection, on whatever thread runs that.
        del engine
        raise BundleError([problem])
    engine.add_data_json(bundle.data.decode())
    return engine


def _parse_error(rel: str, message: str) -> tuple[str, str]:
    text = message.split("Stack backtrace")[0]
    where = next((ln.strip()[4:] for ln in text.splitlines() if ln.strip().startswith("-->")), rel)
    what = next(
        (ln.strip()[7:] for ln in text.splitlines() if ln.strip().startswith("error:")),
        text.strip(),
    )
    return where, what


def _probe(root: str, max_file_bytes: int, max_lines: int) -> None:
    bundle = read_bundle(Path(root), max_file_bytes, max_lines)
    engine = compile_engine(bundle)
    for inp in PROBE_INPUTS:
        engine.set_input_json(orjson.dumps(inp).decode())
        engine.eval_rule(DECISION_RULE)


def probe(bundle: BundleFiles, timeout: float, max_file_bytes: int, max_lines: int) -> None:
    """Evaluate the decision for sample inputs in a child process, bounded in time."""
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=_probe, args=(str(bundle.root), max_file_bytes, max_lines), daemon=True
    )
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise BundleError(
            [(str(bundle.root), f"decision evaluation did not finish within {timeout:g} s")]
        )
    if proc.exitcode != 0:
        raise BundleError([(str(bundle.root), "decision evaluation failed on probe inputs")])
