"""`opsgate guard scan`: files, stdin, --redact, --jsonl, bad input; no database needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from opsgate.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def test_scan_file_prints_json_findings(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("ping jane@example.com from 10.0.0.5", encoding="utf-8")
    r = runner.invoke(app, ["guard", "scan", str(f)])
    assert r.exit_code == 0, r.output
    body = orjson.loads(r.stdout)
    assert [(x["type"], x["start"], x["end"]) for x in body["findings"]] == [
        ("EMAIL", 5, 21), ("IP_ADDRESS", 27, 35),
    ]  # fmt: skip
    assert not (tmp_path / "data").exists()  # offline: nothing created


def test_redact_from_stdin() -> None:
    r = runner.invoke(app, ["guard", "scan", "--redact", "-"], input="key AKIAZ7Q3HX5N2LPV4JTW ok")
    assert r.exit_code == 0
    assert r.stdout == "key <AWS_ACCESS_KEY> ok"


def test_jsonl_streams_one_line_per_input_and_reports_bad_lines() -> None:
    lines = [
        orjson.dumps({"text": "mail jane@example.com"}),
        b"not json",
        orjson.dumps({"nope": 1}),
        b'{"text": "bad \xff utf8"}',
        orjson.dumps({"text": "Grüße 😀 an jörg@example.de"}),
        b"",
        orjson.dumps({"text": "nothing here"}),
    ]
    r = runner.invoke(app, ["guard", "scan", "--jsonl", "-"], input=b"\n".join(lines) + b"\n")
    assert r.exit_code == 1
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == 6
    assert out[0] == {"findings": [{"type": "EMAIL", "start": 5, "end": 21, "score": 0.95,
                                    "detector": "pii"}]}  # fmt: skip
    assert "error" in out[1] and "error" in out[2] and "error" in out[3]
    text = "Grüße 😀 an jörg@example.de"
    f = out[4]["findings"][0]
    assert text[f["start"] : f["end"]] == "jörg@example.de"  # character offsets
    assert out[5] == {"findings": []}
    assert "3 line(s) could not be scanned" in r.stderr


def test_jsonl_redact_adds_text() -> None:
    r = runner.invoke(app, ["guard", "scan", "--jsonl", "--redact", "-"],
                      input='{"text": "call +44 20 7946 0958"}\n')  # fmt: skip
    assert r.exit_code == 0
    assert orjson.loads(r.stdout)["text"] == "call <PHONE>"


def test_invalid_utf8_and_binary_input() -> None:
    r = runner.invoke(app, ["guard", "scan", "-"], input=b"abc \xff\xfe def")
    assert r.exit_code == 1 and "not valid UTF-8 (byte 4)" in r.stderr
    binary = bytes(range(128)) * 100  # valid UTF-8 control characters
    r = runner.invoke(app, ["guard", "scan", "-"], input=binary)
    assert r.exit_code == 0 and orjson.loads(r.stdout)["findings"] == []


def test_missing_file_and_bad_direction(tmp_path: Path) -> None:
    r = runner.invoke(app, ["guard", "scan", str(tmp_path / "nope.txt")])
    assert r.exit_code == 1 and "cannot read" in r.stderr
    r = runner.invoke(app, ["guard", "scan", "--direction", "sideways", "-"], input="x")
    assert r.exit_code == 2


def test_custom_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: codenames\n    kind: dictionary\n    entity: CODENAME\n"
                     "    terms: [Bluebird]\n")  # fmt: skip
    r = runner.invoke(app, ["guard", "scan", "--redact", "--rules", str(rules), "-"],
                      input="Project Bluebird ships")  # fmt: skip
    assert r.exit_code == 0 and r.stdout == "Project <CUSTOM_CODENAME> ships"
    rules.write_text("rules:\n  - name: bad\n    entity: X\n    pattern: 'a(?=b)'\n")
    r = runner.invoke(app, ["guard", "scan", "--rules", str(rules), "-"], input="x")
    assert r.exit_code == 2 and "not valid RE2" in r.stderr


def test_real_process_large_jsonl(tmp_path: Path) -> None:
    """The installed command over a multi-megabyte log file in one process."""
    f = tmp_path / "log.jsonl"
    row = orjson.dumps({"text": "user jane@example.com logged in from 10.1.2.3 " * 20})
    f.write_bytes((row + b"\n") * 3000)
    out = subprocess.run(
        [sys.executable, "-m", "opsgate.cli.main", "guard", "scan", "--jsonl", str(f)],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-500:]
    lines = out.stdout.splitlines()
    assert len(lines) == 3000
    assert len(orjson.loads(lines[-1])["findings"]) == 40
