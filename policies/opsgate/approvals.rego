# Four-eyes: who may decide an approval request. The requester never may.
package opsgate

import rego.v1

deny contains "four-eyes: the requester cannot approve their own request" if {
	input.action == "approval.decide"
	input.principal.id == input.resource.requester
}

grants contains sprintf("member of approver group %s", [g]) if {
	input.action == "approval.decide"
	some g in groups
	g in input.resource.approver_groups
}

grants contains "holds the approver role and no group is required" if {
	input.action == "approval.decide"
	"approver" in roles
	count(input.resource.approver_groups) == 0
}

deny contains "agents cannot decide approvals" if {
	input.action == "approval.decide"
	input.principal.kind == "agent"
}
