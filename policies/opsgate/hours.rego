# Example: outside business hours, changes in production need an approval (L2).
# Business hours come from data.opsgate.business_hours; the context carries the request's
# UTC hour and ISO weekday (1 = Monday) so rules stay simple.
package opsgate

import rego.v1

in_business_hours if {
	bh := data.opsgate.business_hours
	input.context.weekday in bh.weekdays
	input.context.hour >= bh.start
	input.context.hour < bh.end
}

floors contains 2 if {
	input.action == "tool.call"
	input.resource.risk != "read"
	production
	not in_business_hours
}
