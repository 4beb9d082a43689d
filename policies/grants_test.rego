package sluice_test

import data.sluice

visit_fields := {
	"visit_id": {"type": "string", "level": "L2"},
	"patient_id": {"type": "id_cn", "level": "L4"},
	"patient_name": {"type": "name_cn", "level": "L4"},
	"district": {"type": "string", "level": "L1"},
	"diagnosis": {"type": "icd10", "level": "L3"},
	"visit_date": {"type": "date", "level": "L3"},
}

visit_grant := {
	"id": "grt_1", "dataset": "health/visits", "dept": "stats-bureau", "purpose": "research",
	"fields": {"patient_id": "keep", "district": "ceiling", "visit_date": {"op": "generalize", "to": "month"}},
	"valid_until": "2027-03-31T00:00:00Z", "max_rows": 500,
}

researcher := {"id": "rita", "roles": ["researcher"], "dept": "stats-bureau"}

read_under(subject, purpose, grants) := d if {
	d := sluice.decision with input as {
		"subject": subject, "purpose": purpose, "action": "read",
		"resource": object.union(visits, {"fields": visit_fields}), "grants": grants,
	}
}

test_a_grant_releases_exactly_its_treatments_held_to_the_ceiling if {
	d := read_under(researcher, "research", [visit_grant])
	d.allow
	d.grant == "grt_1"
	d.max_rows == 500
	d.fields == {"patient_id": "pseudonymize", "district": "keep", "visit_date": {"op": "generalize", "to": "month"}}
}

test_no_grant_no_read if {
	not read_under(researcher, "research", []).allow
}

test_a_grant_is_its_department_s_purpose_s_and_dataset_s if {
	not read_under(object.union(researcher, {"dept": "health"}), "research", [visit_grant]).allow
	not read_under(researcher, "public-health", [visit_grant]).allow
	not read_under(researcher, "research", [object.union(visit_grant, {"dataset": "civil/assistance"})]).allow
}

test_only_roles_that_use_grants_read_under_one if {
	not read_under({"id": "p", "roles": ["public"], "dept": "stats-bureau"}, "research", [visit_grant]).allow
	not read_under({"id": "s", "roles": ["steward"], "dept": "stats-bureau"}, "research", [visit_grant]).allow
}

test_a_grant_comes_before_the_role_s_own_read if {
	g := object.union(visit_grant, {"id": "grt_2", "dept": "health", "purpose": "public-health"})
	d := read_under(analyst, "public-health", [g])
	d.grant == "grt_2"
	not d.min_k
	without := read_under(analyst, "public-health", [])
	not without.grant
	without.min_k == 5
}

test_a_grant_without_a_row_cap_is_capped_at_a_thousand if {
	d := read_under(researcher, "research", [object.union(visit_grant, {"max_rows": 0})])
	d.max_rows == 1000
}

test_a_grant_s_k_anonymity_is_the_decision_s if {
	d := read_under(researcher, "research", [object.union(visit_grant, {"min_k": 5, "min_l": 3})])
	d.min_k == 5
	d.min_l == 3
	not read_under(researcher, "research", [visit_grant]).min_k
}
