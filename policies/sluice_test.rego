package sluice_test

import data.sluice

visits := {"source": "health", "dataset": "visits"}

assistance := {"source": "civil", "dataset": "assistance"}

residents := {"source": "police", "dataset": "residents"}

analyst := {"id": "alice", "roles": ["analyst"], "dept": "health"}

caseworker := {"id": "carol", "roles": ["caseworker"], "dept": "civil", "district": "朝阳区"}

read(subject, resource, purpose) := d if {
	d := sluice.decision with input as {
		"subject": subject,
		"purpose": purpose,
		"action": "read",
		"resource": resource,
	}
}

stats(subject, resource, purpose) := d if {
	d := sluice.decision with input as {
		"subject": subject,
		"purpose": purpose,
		"action": "stats",
		"resource": resource,
	}
}

# The analyst's view identifies no patient and no visit, and is released
# k-anonymous: a visit only among those of at least five patients, of at
# least three diagnoses.
test_analyst_reads_a_k_anonymous_view_of_visits if {
	d := read(analyst, visits, "public-health")
	d.allow
	d.min_k == 5
	d.min_l == 3
	every f in ["visit_id", "patient_id", "patient_name"] {
		d.fields[f] == "drop"
	}
	d.fields.visit_date == {"op": "generalize", "to": "month"}
	d.fields.cost == {"op": "generalize", "to": "bucket", "width": 2000}
	d.params == ["district", "page", "page_size"]
}

test_analyst_needs_the_public_health_purpose if {
	not read(analyst, visits, "marketing").allow
	not read(analyst, visits, "").allow
}

test_analyst_of_another_department_is_denied if {
	not read(object.union(analyst, {"dept": "police"}), visits, "public-health").allow
}

test_analyst_cannot_read_other_datasets if {
	not read(analyst, residents, "public-health").allow
	not read(analyst, assistance, "public-health").allow
}

test_analyst_stats_on_the_datasets_it_does_not_read_up_to_epsilon_one if {
	every r in [assistance, residents] {
		d := stats(analyst, r, "public-health")
		d.allow
		d.stats.max_epsilon == 1.0
		d.stats.account == "analyst"
		d.stats.consumer_budget == 10
		not d.stats.org_budget
	}
}

test_analyst_gets_no_stats_on_the_dataset_it_reads if {
	read(analyst, visits, "public-health").allow
	not stats(analyst, visits, "public-health").allow
}

researcher := {"id": "rita", "roles": ["researcher"], "dept": "stats-bureau"}

test_researcher_stats_on_every_dataset_with_an_organisation_cap if {
	every r in [visits, assistance, residents] {
		d := stats(researcher, r, "research")
		d.allow
		d.stats.account == "researcher"
		d.stats.max_epsilon == 1.0
		d.stats.consumer_budget == 10
		d.stats.org_budget == 15
	}
}

test_researcher_needs_the_research_purpose_and_reads_no_records if {
	not stats(researcher, visits, "").allow
	not stats(researcher, visits, "public-health").allow
	not stats(object.union(researcher, {"dept": "health"}), visits, "research").allow
	every r in [visits, assistance, residents] {
		not read(researcher, r, "research").allow
	}
}

# No role of the shipped policy both reads a dataset's records and gets
# statistics about it.
test_no_role_gets_records_and_stats_of_one_dataset if {
	subjects := [
		analyst, caseworker, researcher, {"id": "pat", "roles": ["public"]},
		object.union(caseworker, {"roles": ["caseworker", "public"]}),
		{"id": "r", "roles": ["responder", "public"], "dept": "health"},
		object.union(analyst, {"roles": ["public", "analyst"]}),
	]
	purposes := ["", "public-health", "research", "social-assistance", "statistics"]
	every s in subjects {
		every r in [visits, assistance, residents] {
			every p in purposes {
				not both(s, r, p)
			}
		}
	}
}

both(s, r, p) if {
	read(s, r, p).allow
	stats(s, r, p).allow
}

# The caseworker recognises the person at the counter: ID region and last
# 4, phone first 3 and last 4, and the surname with the given name's length
# hidden.
test_caseworker_reads_own_district_masked if {
	d := read(caseworker, assistance, "")
	d.allow
	d.rows == [{"field": "district", "in": ["朝阳区"]}]
	d.fields.id_number == "mask_id_cn"
	d.fields.name == {"op": "mask_name_cn", "width": "fixed"}
	d.fields.phone == "mask_phone_cn"
}

test_caseworker_gets_no_field_unmasked_but_case_data if {
	d := read(caseworker, assistance, "")
	kept := {f | some f, t in d.fields; t == "keep"}
	kept == {"case_id", "district", "household_size", "monthly_allowance", "start_date"}
}

test_caseworker_without_district_is_denied if {
	not read(object.remove(caseworker, ["district"]), assistance, "").allow
	not read(object.union(caseworker, {"district": ""}), assistance, "").allow
}

test_caseworker_has_no_stats_and_no_other_dataset if {
	not stats(caseworker, assistance, "").allow
	not read(caseworker, visits, "").allow
}

test_public_has_no_records if {
	public := {"id": "pat", "roles": ["public"]}
	every r in [visits, assistance, residents] {
		not read(public, r, "").allow
	}
}

test_public_counts_and_sums_by_district_only if {
	d := stats({"id": "pat", "roles": ["public"]}, visits, "")
	d.allow
	d.stats.metrics == ["count", "sum"]
	d.stats.group_by == ["district"]
	d.stats.max_epsilon == 0.5
	d.stats.account == "public"
	d.stats.consumer_budget == 5
}

test_auditor_and_officer_get_no_data if {
	every role in ["auditor", "officer"] {
		s := {"id": "x", "roles": [role], "dept": "health"}
		not read(s, visits, "public-health").allow
		not stats(s, visits, "public-health").allow
	}
}

test_first_role_in_precedence_decides if {
	d := stats({"id": "a", "roles": ["public", "analyst"], "dept": "health"}, residents, "public-health")
	d.stats.max_epsilon == 1.0
	d.stats.account == "analyst"
}

test_catalog_lists_what_the_caller_may_use if {
	sluice.decision.allow with input as {"subject": caseworker, "action": "catalog", "resource": assistance}
	not sluice.decision.allow with input as {"subject": caseworker, "action": "catalog", "resource": visits}
	not sluice.decision.allow with input as {"subject": {"id": "x", "roles": ["auditor"]}, "action": "catalog", "resource": visits}
}

test_unknown_action_is_denied if {
	not sluice.decision.allow with input as {"subject": analyst, "purpose": "public-health", "action": "delete", "resource": visits}
}

test_only_auditors_use_the_audit_api if {
	sluice.decision.allow with input as {"subject": {"id": "audrey", "roles": ["auditor"]}, "action": "audit"}
	not sluice.decision.allow with input as {"subject": analyst, "action": "audit"}
	not sluice.decision.allow with input as {"subject": {"id": "oscar", "roles": ["officer"]}, "action": "audit"}
}

# A shared pseudonym scope lets every organisation whose rule names it join
# on the pseudonyms; the shipped policy fuses nothing, so every pseudonym
# it releases is scoped to the receiving organisation (or narrower). A
# grant that fuses on purpose must change this test too.
test_no_shipped_pseudonym_is_shared_across_organisations if {
	subjects := [
		analyst, caseworker, researcher,
		{"id": "r", "roles": ["registrar"], "dept": "police", "district": "海淀区"},
		{"id": "e", "roles": ["responder"], "dept": "health"},
	]
	purposes := ["", "public-health", "research", "social-assistance", "residency-registration"]
	treatments := [t |
		some s in subjects
		some r in [visits, assistance, residents]
		some p in purposes
		some t in object.get(read_in_office_hours(s, r, p), "fields", {})
	]
	count(treatments) > 0
	every t in treatments {
		not shared_pseudonym(t)
	}
}

read_in_office_hours(subject, resource, purpose) := d if {
	d := sluice.decision with input as {
		"subject": subject,
		"purpose": purpose,
		"action": "read",
		"resource": resource,
		"time": "2026-11-26T02:00:00Z",
		"justification": "cardiac arrest in ward 3, patient unconscious",
	}
}

shared_pseudonym(t) if {
	t.op == "pseudonymize"
	not object.get(t, "scope", "org_purpose") in {"org_purpose", "consumer", "dataset"}
}
