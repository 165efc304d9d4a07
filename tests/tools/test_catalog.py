from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from opsgate.errors import ConfigError, ValidationFailed
from opsgate.tools.catalog import ZONES_FILE, ToolSpec, load_tools, load_zones
from opsgate.tools.service import validate_args

ZONES = load_zones(ZONES_FILE)
BASE = {
    "name": "k8s.scale",
    "title": "Scale",
    "description": "d",
    "zone": "kubernetes",
    "process_area": "workloads",
    "risk": "write",
    "input_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["replicas"],
        "properties": {"replicas": {"type": "integer", "minimum": 0}},
    },
}


def test_fifteen_zones_match_the_policy_bundle() -> None:
    import json

    from opsgate.policy.bundle import DEFAULT_BUNDLE

    assert len(ZONES) == 15
    policy_zones = json.loads((DEFAULT_BUNDLE / "opsgate" / "data.json").read_text())["opsgate"][
        "zones"
    ]
    assert set(policy_zones) == set(ZONES)
    for zid, z in ZONES.items():
        assert z.default_gate == policy_zones[zid]["gate_floor"], zid


@pytest.mark.parametrize(
    "change",
    [
        {"bogus": 1},
        {"name": "NoDot"},
        {"name": "a.b;rm"},
        {"risk": "explosive"},
        {"gate": "L7"},
        {"input_schema": {"type": "nonsense"}},
        {"credential": "vault://x"},
        {"timeout_seconds": 0},
    ],
)
def test_spec_validation(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ToolSpec.model_validate({**BASE, **change})


def test_annotations_and_gates_follow_risk() -> None:
    read = ToolSpec.model_validate({**BASE, "risk": "read"})
    destructive = ToolSpec.model_validate({**BASE, "risk": "destructive"})
    assert read.annotations()["readOnlyHint"] and read.effective_gate == "L0"
    assert destructive.annotations()["destructiveHint"] and destructive.effective_gate == "L2"
    assert ToolSpec.model_validate({**BASE, "gate": "L3"}).effective_gate == "L3"


def test_tool_file_errors_name_the_file(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("tools:\n  - name: x.y\n    zone: atlantis\n")
    with pytest.raises(ConfigError) as ei:
        load_tools(f, ZONES)
    assert str(f) in ei.value.problems[0][0]
    f.write_text("tools: [\n")
    with pytest.raises(ConfigError) as ei:
        load_tools(f, ZONES)
    assert ei.value.problems[0][0].startswith(f"{f}:")


def test_argument_errors_are_precise() -> None:
    spec = ToolSpec.model_validate(BASE)
    with pytest.raises(ValidationFailed) as ei:
        validate_args(spec, {"replicas": -1, "extra": True})
    fields = {e["field"] for e in ei.value.errors or []}
    assert fields == {"replicas", "(root)"}
    with pytest.raises(ValidationFailed):
        validate_args(spec, ["not", "an", "object"])
    deep: dict[str, object] = {}
    cur = deep
    for _ in range(100):
        cur["a"] = {}
        cur = cur["a"]  # type: ignore[assignment]
    with pytest.raises(ValidationFailed, match="depth"):
        validate_args(spec, deep)
