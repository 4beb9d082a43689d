# Classification levels. data.registry.levels ranks them: L1 public,
# L2 internal, L3 sensitive, L4 identifies a person. The gateway hands
# every dataset field's level to the policy in input.resource.fields.
#
# Copy this to release fields by sensitivity instead of by name:
#
#	"fields": levels.keep_up_to(input.resource.fields, "L2")
#
# keeps every field declared L1 or L2 and, by omission, drops the rest.
package sluice.lib.levels

# rank of a level; a level the registry does not know ranks above all
# others, so it is treated as the most sensitive.
rank(level) := data.registry.levels[level].rank

rank(level) := 99 if not data.registry.levels[level]

# at_most holds when level is no more sensitive than max.
at_most(level, max) if rank(level) <= rank(max)

# keep_up_to keeps the fields (as in input.resource.fields) whose level is
# at most max. A field without a level is not kept.
keep_up_to(fields, max) := {name: "keep" |
	some name, f in fields
	at_most(f.level, max)
}
