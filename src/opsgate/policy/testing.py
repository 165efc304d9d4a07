"""The bundle's own tests, run by the embedded engine (`opsgate policy test`, CI).

Two kinds, both in `*_test.rego` files: rules named `test_*` that must be true, and a `cases`
object whose entries give an `input` and the `expect`ed decision. (Cases replace `with input
as` because regorus reuses cached dependent rules under `with`.)
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from typing import Any

import orjson

from opsgate.policy.bundle import DECISION_RULE, BundleFiles, compile_engine

_TEST_RULE = re.compile(r"^(test_\w+)\s+(?:if\b|:=|=|\{)", re.M)
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.M)


@dataclass(frozen=True)
class CaseResult:
    name: str
    ok: bool
    message: str = ""


def _check(expect: dict[str, Any], got: dict[str, Any]) -> str:
    problems = []
    if "allow" in expect and got.get("allow") != expect["allow"]:
        problems.append(f"allow is {got.get('allow')}, expected {expect['allow']}")
    for key, want in (expect.get("obligations") or {}).items():
        have = (got.get("obligations") or {}).get(key)
        if have != want:
            problems.append(f"obligations.{key} is {have!r}, expected {want!r}")
    if "reasons_include" in expect and expect["reasons_include"] not in (got.get("reasons") or []):
        problems.append(f"reasons {got.get('reasons')} lack {expect['reasons_include']!r}")
    return "; ".join(problems)


def run_tests(bundle: BundleFiles) -> list[CaseResult]:
    engine = compile_engine(bundle, include_tests=True)
    try:
        return _run(engine, bundle)
    except BaseException as exc:
        # Drop the engine on this thread even if an error escapes (see compile_engine): the
        # traceback's frames would otherwise keep it alive.
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        del engine


def _run(engine: Any, bundle: BundleFiles) -> list[CaseResult]:
    results: list[CaseResult] = []
    for rel in bundle.test_files:
        src = bundle.policies[rel]
        pkg_match = _PACKAGE.search(src)
        if pkg_match is None:
            continue
        pkg = f"data.{pkg_match.group(1)}"
        engine.set_input_json("{}")
        for rule in _TEST_RULE.findall(src):
            try:
                ok = engine.eval_rule(f"{pkg}.{rule}") is True
                results.append(CaseResult(f"{rel}::{rule}", ok, "" if ok else "not true"))
            except RuntimeError as exc:
                results.append(
                    CaseResult(f"{rel}::{rule}", False, str(exc).split("Stack")[0].strip())
                )
        try:
            cases = engine.eval_rule(f"{pkg}.cases")
        except RuntimeError:
            cases = None
        for name, case in (cases or {}).items():
            engine.set_input_json(orjson.dumps(case.get("input", {})).decode())
            try:
                # As JSON, the form OpsGate reads decisions in: sets become sorted arrays.
                got = orjson.loads(engine.eval_rule_as_json(DECISION_RULE)) or {}
                problem = _check(case.get("expect", {}), got)
            except RuntimeError as exc:
                problem = str(exc).split("Stack")[0].strip()
            results.append(CaseResult(f"{rel}::{name}", not problem, problem))
    return results
