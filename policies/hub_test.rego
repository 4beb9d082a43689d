package sluice_test

import data.sluice

hub(subject, action) := d if {
	d := sluice.decision with input as {"subject": subject, "action": action}
}

steward := {"id": "sam", "roles": ["steward"], "dept": "health"}

coordinator := {"id": "cora", "roles": ["coordinator"]}

test_department_members_ask_and_stewards_decide if {
	hub(researcher, "request.submit").allow
	hub(steward, "request.decide").allow
	not hub(researcher, "request.decide").allow
	not hub(analyst, "grant.revoke").allow
	hub(steward, "grant.revoke").allow
}

test_the_coordinator_decides_without_a_department if {
	hub(coordinator, "request.decide").allow
	hub(coordinator, "grant.suspend").allow
	not hub(coordinator, "request.submit").allow
}

test_who_acts_for_no_department_asks_nothing if {
	not hub({"id": "x", "roles": ["analyst"]}, "request.submit").allow
	not hub({"id": "x", "roles": ["steward"]}, "request.decide").allow
}

test_the_public_and_citizens_take_no_hub_action if {
	every action in object.keys(data.registry.hub_actions) {
		not hub({"id": "p", "roles": ["public"], "dept": "x"}, action).allow
		not hub({"id": "c", "roles": ["citizen"]}, action).allow
	}
}

test_a_refusal_says_which_action if {
	d := hub({"id": "p", "roles": ["public"]}, "request.decide")
	not d.allow
	contains(d.reason, "request.decide")
}
