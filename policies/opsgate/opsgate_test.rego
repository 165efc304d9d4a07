# Tests for the default bundle, run by `opsgate policy test` (and in CI).
#
# Each entry of `cases` is one request: the runner sets it as the input, evaluates
# data.opsgate.decision and checks `expect`: `allow`, any obligation values under
# `obligations`, and `reasons_include` (a reason that must be present).
# Rules named test_* must evaluate to true.
package opsgate_test

import rego.v1

user := {"id": "u1", "kind": "user", "tenant": "default", "groups": [], "roles": ["user"]}

operator := {"id": "op1", "kind": "user", "tenant": "default", "groups": ["sg-k8s-approvers"], "roles": ["operator"]}

agent := {"id": "key:agent1", "kind": "agent", "tenant": "default", "groups": [], "roles": ["agent"]}

noon := {"hour": 12, "weekday": 3, "classification": "internal"}

night := {"hour": 23, "weekday": 3, "classification": "internal"}

delete_pod(ns) := {"kind": "tool", "name": "k8s.delete_pod", "zone": "kubernetes", "risk": "destructive", "gate": "L1", "namespace": ns}

scale(risk) := {"kind": "tool", "name": "k8s.scale", "zone": "kubernetes", "risk": risk, "gate": "L1", "environment": "production"}

approval := {"kind": "approval", "name": "apr-1", "requester": "op1", "approver_groups": ["sg-k8s-approvers"]}

cases := {
	"user may use default models": {
		"input": {"principal": user, "action": "model.invoke", "resource": {"kind": "model", "name": "ops-default"}, "context": noon},
		"expect": {"allow": true, "obligations": {"gate": "L0", "in_tenant_only": false}},
	},
	"confidential model refused to plain users": {
		"input": {"principal": user, "action": "model.invoke", "resource": {"kind": "model", "name": "confidential-chat"}, "context": noon},
		"expect": {"allow": false},
	},
	"confidential model for operators, with a token cap": {
		"input": {"principal": operator, "action": "model.invoke", "resource": {"kind": "model", "name": "confidential-chat"}, "context": noon},
		"expect": {"allow": true, "obligations": {"max_tokens": 4096}},
	},
	"confidential model for its directory group": {
		"input": {"principal": object.union(user, {"groups": ["sg-confidential"]}), "action": "model.invoke", "resource": {"kind": "model", "name": "confidential-chat"}, "context": noon},
		"expect": {"allow": true, "reasons_include": "group sg-confidential may use model confidential-chat"},
	},
	"restricted data stays in the tenant": {
		"input": {"principal": user, "action": "model.invoke", "resource": {"kind": "model", "name": "ops-default"}, "context": {"hour": 12, "weekday": 3, "classification": "restricted"}},
		"expect": {"allow": true, "obligations": {"in_tenant_only": true, "redact": {}}},
	},
	"external routing pseudonymises personal data": {
		"input": {"principal": user, "action": "model.invoke", "resource": {"kind": "model", "name": "ops-default"}, "context": noon},
		"expect": {"obligations": {"redact": {"EMAIL": "pseudonymise", "PERSON": "pseudonymise", "PHONE": "pseudonymise"}}},
	},
	"default deny names what was asked": {
		"input": {"principal": user, "action": "something.else", "resource": {"kind": "x", "name": "y"}, "context": {}},
		"expect": {"allow": false, "reasons_include": "no rule grants something.else on x y"},
	},
	"agents may read kubernetes": {
		"input": {"principal": agent, "action": "tool.call", "resource": {"kind": "tool", "name": "k8s.list_pods", "zone": "kubernetes", "risk": "read", "gate": "L0"}, "context": noon},
		"expect": {"allow": true, "obligations": {"gate": "L0"}},
	},
	"plain users may not use kubernetes tools": {
		"input": {"principal": user, "action": "tool.call", "resource": {"kind": "tool", "name": "k8s.list_pods", "zone": "kubernetes", "risk": "read", "gate": "L0"}, "context": noon},
		"expect": {"allow": false},
	},
	"unknown zone is denied": {
		"input": {"principal": operator, "action": "tool.call", "resource": {"kind": "tool", "name": "x", "zone": "atlantis", "risk": "read"}, "context": noon},
		"expect": {"allow": false, "reasons_include": "unknown zone \"atlantis\""},
	},
	"destructive in production needs approval from the zone's approvers": {
		"input": {"principal": agent, "action": "tool.call", "resource": delete_pod("prod"), "context": noon},
		"expect": {"allow": true, "obligations": {"gate": "L2", "approver_groups": ["sg-k8s-approvers"]}},
	},
	"destructive in staging keeps the tool's gate": {
		"input": {"principal": agent, "action": "tool.call", "resource": delete_pod("staging"), "context": noon},
		"expect": {"allow": true, "obligations": {"gate": "L1"}},
	},
	"changes in identity and access are human-only": {
		"input": {"principal": operator, "action": "tool.call", "resource": {"kind": "tool", "name": "iam.reset_mfa", "zone": "identity-access", "risk": "write", "gate": "L2"}, "context": noon},
		"expect": {"allow": true, "obligations": {"gate": "L3", "approver_groups": ["sg-iam-approvers"]}},
	},
	"reads in identity and access keep the zone floor": {
		"input": {"principal": operator, "action": "tool.call", "resource": {"kind": "tool", "name": "iam.list_users", "zone": "identity-access", "risk": "read", "gate": "L0"}, "context": noon},
		"expect": {"obligations": {"gate": "L2"}},
	},
	"after hours a production change needs approval": {
		"input": {"principal": agent, "action": "tool.call", "resource": scale("write"), "context": night},
		"expect": {"allow": true, "obligations": {"gate": "L2"}},
	},
	"in business hours the same change does not": {
		"input": {"principal": agent, "action": "tool.call", "resource": scale("write"), "context": noon},
		"expect": {"obligations": {"gate": "L1"}},
	},
	"after hours reads are unaffected": {
		"input": {"principal": agent, "action": "tool.call", "resource": object.union(scale("read"), {"gate": "L0"}), "context": night},
		"expect": {"obligations": {"gate": "L0"}},
	},
	"a malformed gate level sets no floor (the zone's still applies)": {
		"input": {"principal": agent, "action": "tool.call", "resource": object.union(scale("read"), {"gate": "L9"}), "context": noon},
		"expect": {"obligations": {"gate": "L0"}},
	},
	"four-eyes: the requester cannot approve": {
		"input": {"principal": operator, "action": "approval.decide", "resource": approval, "context": {}},
		"expect": {"allow": false, "reasons_include": "four-eyes: the requester cannot approve their own request"},
	},
	"another member of the approver group may approve": {
		"input": {"principal": object.union(operator, {"id": "op2"}), "action": "approval.decide", "resource": approval, "context": {}},
		"expect": {"allow": true},
	},
	"outsiders may not approve": {
		"input": {"principal": object.union(user, {"id": "u9"}), "action": "approval.decide", "resource": approval, "context": {}},
		"expect": {"allow": false},
	},
	"agents never decide approvals": {
		"input": {"principal": object.union(agent, {"groups": ["sg-k8s-approvers"]}), "action": "approval.decide", "resource": approval, "context": {}},
		"expect": {"allow": false, "reasons_include": "agents cannot decide approvals"},
	},
	"break-glass without a reason is refused": {
		"input": {"principal": object.union(user, {"roles": ["break_glass"]}), "action": "admin.config.write", "resource": {"kind": "config", "name": "x"}, "context": {"reason": "  "}},
		"expect": {"allow": false, "reasons_include": "break-glass requires a reason"},
	},
	"break-glass with a reason is allowed and alerts": {
		"input": {"principal": object.union(user, {"roles": ["break_glass"]}), "action": "admin.config.write", "resource": {"kind": "config", "name": "x"}, "context": {"reason": "INC-4711 outage"}},
		"expect": {"allow": true, "obligations": {"alert": true}, "reasons_include": "break-glass: INC-4711 outage"},
	},
	"admin actions need the admin role": {
		"input": {"principal": operator, "action": "admin.keys.create", "resource": {"kind": "key", "name": "k"}, "context": {}},
		"expect": {"allow": false},
	},
	"admins may administer": {
		"input": {"principal": object.union(user, {"roles": ["admin"]}), "action": "admin.keys.create", "resource": {"kind": "key", "name": "k"}, "context": {}},
		"expect": {"allow": true},
	},
}

test_every_zone_has_roles_and_a_floor if {
	every name, z in data.opsgate.zones {
		count(z.roles) > 0
		regex.match(`^L[0-3]$`, z.gate_floor)
	}
}

test_fifteen_zones if count(data.opsgate.zones) == 15
