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

test_the_public_takes_no_hub_action if {
	every action in object.keys(data.registry.hub_actions) {
		not hub({"id": "p", "roles": ["public"], "dept": "x"}, action).allow
	}
}

citizen := {"id": "c", "roles": ["citizen"], "claims": {"id_number": "110101199001011234"}}

test_a_citizen_objects_and_reads_their_usage_only if {
	hub(citizen, "objection.file").allow
	hub(citizen, "objection.read").allow
	hub(citizen, "usage.read").allow
	every action in object.keys(data.registry.hub_actions) - {"objection.file", "objection.read", "usage.read"} {
		not hub(citizen, action).allow
	}
}

test_a_citizen_token_without_a_person_takes_no_action if {
	every action in object.keys(data.registry.hub_actions) {
		not hub({"id": "c", "roles": ["citizen"]}, action).allow
		not hub({"id": "c", "roles": ["citizen"], "claims": {"id_number": ""}}, action).allow
		not hub({"id": "c", "roles": ["citizen"], "claims": {"id_number": 42}}, action).allow
	}
}

test_departments_object_and_stewards_decide_objections if {
	hub(analyst, "objection.file").allow
	hub(analyst, "notice.ack").allow
	hub(steward, "objection.decide").allow
	hub(coordinator, "objection.decide").allow
	not hub(analyst, "objection.decide").allow
	not hub(analyst, "usage.read").allow
	not hub(coordinator, "notice.ack").allow
}

test_a_refusal_says_which_action if {
	d := hub({"id": "p", "roles": ["public"]}, "request.decide")
	not d.allow
	contains(d.reason, "request.decide")
}
