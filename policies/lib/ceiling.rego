# Ceilings: the most a sharing grant may release of a field, by the
# field's level. A steward approving a request names a treatment for each
# field (or "ceiling", the most the level allows); a treatment beyond the
# level's ceiling — a clear ID number on an L4 field — is released at the
# ceiling instead, whatever the grant says.
#
# data.registry.ceilings maps each level to its ceiling: "keep" (the
# level allows the value in clear) or a treatment; for a level whose
# ceiling is not "keep", data.registry.within_ceiling lists the operators
# that release no more than it. The shipped registry's L4 ceiling is a
# pseudonym, and within it are only treatments that release no part of
# the value (drop, null, redact, pseudonymize): a mask keeps digits (a
# keep_first of 14 keeps the birth date), a prefix or a truncation can keep
# the whole value, so each is held to the pseudonym.
#
# Copy this into a grant-based read:
#
#	"fields": {name: ceiling.cap(name, t) | some name, t in g.fields}
package sluice.lib.ceiling

# level of a field: as the dataset declares it, else the most sensitive.
level(name) := input.resource.fields[name].level

level(name) := "L4" if not input.resource.fields[name].level

# of is the ceiling treatment of a field.
of(name) := data.registry.ceilings[level(name)]

of(name) := "drop" if not data.registry.ceilings[level(name)]

# cap is the treatment t, granted for the field name, held to its ceiling.
cap(name, "ceiling") := of(name)

cap(name, t) := t if {
	t != "ceiling"
	within(name, t)
}

cap(name, t) := of(name) if {
	t != "ceiling"
	not within(name, t)
}

# within holds when t releases no more of the field than its ceiling.
within(name, _) if of(name) == "keep"

within(name, t) if op(t) in data.registry.within_ceiling

# op is a treatment's operator: the string, or an object's "op".
op(t) := t if is_string(t)

op(t) := t.op if is_object(t)
