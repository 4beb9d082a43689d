# The sharing hub's actions (DESIGN.md, "The hub"). The policy says who
# may take a kind of action at all; the hub then checks the caller's
# relation to the object — a request's requester, a steward of the owning
# department, the coordinator — and that no one decides their own
# request. data.registry.hub_actions lists, per action, the roles that may
# take it; every role acts for its department (the token's dept claim)
# but the coordinator, who acts for the data authority, and the citizen,
# who acts for themselves: a citizen's token names the person
# (id_number), whose own records and usage are all it reaches.
package sluice

decision := {"allow": true, "reason": sprintf("%s may %s", [hub_role, input.action])} if {
	hub_action
	hub_role
}

decision := {"allow": false, "reason": sprintf("no role of this caller may %s", [input.action])} if {
	hub_action
	not hub_role
}

hub_action if data.registry.hub_actions[input.action]

hub_role := [role |
	some role in data.registry.hub_actions[input.action]
	role in input.subject.roles
	acts_for_a_department(role)
][0]

acts_for_a_department("coordinator")

acts_for_a_department("citizen") if {
	is_string(input.subject.claims.id_number)
	input.subject.claims.id_number != ""
}

acts_for_a_department(role) if {
	not role in {"coordinator", "citizen"}
	input.subject.dept != ""
}
