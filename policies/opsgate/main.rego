# OpsGate's decision point. OpsGate evaluates exactly one rule: data.opsgate.decision.
#
# Every other file in this package adds to three sets:
#   grants  - reasons why the request may go ahead
#   deny    - reasons why it must not (any deny wins)
#   floors  - minimum gate levels (0..3 = L0..L3) the operation needs
# Precedence: deny > require approval (gate >= L2) > allow. Nothing granted = denied.
package opsgate

import rego.v1

decision := {
	"allow": allowed,
	"reasons": reasons,
	"obligations": {
		"gate": gate_names[gate],
		"redact": redact,
		"in_tenant_only": in_tenant_only,
		"max_tokens": max_tokens,
		"approver_groups": approver_groups,
		"alert": alert,
	},
}

default allowed := false

allowed if {
	count(deny) == 0
	count(grants) > 0
}

# Sets, not sorted arrays: a set is already ordered and leaves the engine as a JSON array, and
# building the arrays cost ~5% of an evaluation.
reasons := deny if count(deny) > 0

reasons := grants if {
	count(deny) == 0
	count(grants) > 0
}

reasons := {sprintf("no rule grants %s on %s %s", [input.action, input.resource.kind, input.resource.name])} if {
	count(deny) == 0
	count(grants) == 0
}

# The gate is the highest floor any rule sets (the tool's own default is one of them).
gate := max(floors | {0})

default alert := false

default in_tenant_only := false

default max_tokens := null

default redact := {}

redact := data.opsgate.redact_external if not in_tenant_only

# Helpers used across files.
roles := {r | some r in input.principal.roles}

groups := {g | some g in input.principal.groups}

# A table, not a regex: regex.match compiles its pattern on every evaluation, and this runs
# on every tool call (measured ~15% of the default bundle's evaluation time).
gate_numbers := {"L0": 0, "L1": 1, "L2": 2, "L3": 3}

gate_number(level) := gate_numbers[level]

# The decision's gate level by number (a floor above 3 leaves the decision undefined, which
# OpsGate treats as an evaluation failure: fail closed).
gate_names := ["L0", "L1", "L2", "L3"]
