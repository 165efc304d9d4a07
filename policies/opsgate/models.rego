# Model access: which roles and directory groups may call which logical models.
# Models not listed in data.opsgate.models use the "*" entry.
package opsgate

import rego.v1

model_entry := data.opsgate.models[input.resource.name] if input.action == "model.invoke"

model_entry := data.opsgate.models["*"] if {
	input.action == "model.invoke"
	not data.opsgate.models[input.resource.name]
}

grants contains sprintf("role %s may use model %s", [r, input.resource.name]) if {
	some r in roles
	r in model_entry.roles
}

grants contains sprintf("group %s may use model %s", [g, input.resource.name]) if {
	some g in groups
	g in model_entry.groups
}

# Data classification routing: restricted data never leaves the tenant's own models.
in_tenant_only if {
	input.action == "model.invoke"
	input.context.classification == "restricted"
}

max_tokens := model_entry.max_tokens if model_entry.max_tokens
