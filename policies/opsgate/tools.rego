# Tool access by zone and role, and the gate-level floors for operations.
package opsgate

import rego.v1

zone := data.opsgate.zones[input.resource.zone] if input.action == "tool.call"

deny contains sprintf("unknown zone %q", [input.resource.zone]) if {
	input.action == "tool.call"
	not data.opsgate.zones[input.resource.zone]
}

grants contains sprintf("role %s may use %s tools", [r, input.resource.zone]) if {
	some r in roles
	r in zone.roles
}

# The tool's catalog default is the first floor.
floors contains gate_number(input.resource.gate) if {
	input.action == "tool.call"
	input.resource.gate
}

# The zone's floor.
floors contains gate_number(zone.gate_floor) if zone.gate_floor

production if input.resource.namespace in data.opsgate.production_namespaces

production if input.resource.environment == "production"

# Destructive operations in production need a human approval (L2) at least.
floors contains 2 if {
	input.action == "tool.call"
	input.resource.risk == "destructive"
	production
}

# Changes in privileged zones (identity and access) are human-only (L3).
floors contains 3 if {
	input.action == "tool.call"
	input.resource.zone in data.opsgate.privileged_zones
	input.resource.risk != "read"
}

approver_groups contains g if {
	some g in zone.approver_groups
}

approver_groups contains g if {
	not zone.approver_groups
	input.action == "tool.call"
	some g in data.opsgate.default_approver_groups
}
