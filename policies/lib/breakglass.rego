# Break-glass access: an emergency grant that applies only when the caller
# states why, in the Sluice-Justification header (input.justification), at
# least data.registry.break_glass.min_justification characters long. Every
# such decision carries the audit flag "break_glass" and the justification
# in its reason, so the audit trail shows who broke the glass and why, and
# a reviewer finds each one by its flag; a request without a justification is
# refused with the flag "break_glass_refused". The justification is
# recorded as stated: callers must not put personal data in it.
#
# Copy this: wrap the emergency grant in breakglass.mark(...) with
# breakglass.stated among its conditions, and return breakglass.refusal
# when it is not stated.
package sluice.lib.breakglass

# stated holds when the caller gave a long enough justification.
stated if {
	is_string(input.justification)
	count(trim_space(input.justification)) >= data.registry.break_glass.min_justification
}

# mark flags an emergency decision for review and records the
# justification in its reason.
mark(d) := object.union(d, {
	"flags": ["break_glass"],
	"reason": sprintf("BREAK-GLASS by %s: %s; justification: %s", [input.subject.id, d.reason, trim_space(input.justification)]),
})

# refusal is the deny of an emergency request without a justification.
refusal := {
	"allow": false,
	"reason": sprintf("break-glass access needs a stated justification: send the Sluice-Justification header, at least %d characters", [data.registry.break_glass.min_justification]),
	"flags": ["break_glass_refused"],
}
