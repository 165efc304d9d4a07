# Administrative actions (admin.*) need the admin role; reading audit needs auditor.
package opsgate

import rego.v1

grants contains "admin role" if {
	startswith(input.action, "admin.")
	"admin" in roles
}

grants contains "auditor role may read" if {
	input.action in {"admin.audit.read", "admin.policy.read"}
	"auditor" in roles
}

# Assistants scoped to directory groups.
grants contains sprintf("group %s may use assistant %s", [g, input.resource.name]) if {
	input.action == "assistant.use"
	some g in groups
	g in data.opsgate.assistants[input.resource.name].groups
}
