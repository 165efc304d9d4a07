# Break-glass: the break_glass role may do anything, with a mandatory reason, and every use
# raises an alert. Without a reason it grants nothing and says why.
package opsgate

import rego.v1

break_glass_reason := trim_space(object.get(input.context, "reason", ""))

grants contains sprintf("break-glass: %s", [break_glass_reason]) if {
	"break_glass" in roles
	break_glass_reason != ""
}

alert if {
	"break_glass" in roles
	break_glass_reason != ""
}

deny contains "break-glass requires a reason" if {
	"break_glass" in roles
	break_glass_reason == ""
	count(grants) == 0
}
