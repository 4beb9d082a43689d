# Tests of the grants that use the policy library: the registrar (purpose,
# office hours, district scoping, fields by level), the responder
# (break-glass) and the officer (explain).
package sluice_library_test

import data.sluice

residents := {
	"source": "police", "dataset": "residents",
	"fields": {
		"id_number": {"type": "id_cn", "level": "L4"},
		"name": {"type": "name_cn", "level": "L4"},
		"gender": {"type": "string", "level": "L2"},
		"birth_date": {"type": "date", "level": "L3"},
		"phone": {"type": "phone_cn", "level": "L4"},
		"address": {"type": "address_cn", "level": "L4"},
		"district": {"type": "string", "level": "L1"},
	},
}

visits := {"source": "health", "dataset": "visits"}

registrar := {"id": "rita", "roles": ["registrar"], "dept": "police", "district": "海淀区"}

responder := {"id": "erin", "roles": ["responder"], "dept": "health"}

thursday_10am := "2026-11-26T02:00:00Z"

thursday_8pm := "2026-11-26T12:00:00Z"

read_residents(subject, purpose, t) := d if {
	d := sluice.decision with input as {
		"subject": subject, "purpose": purpose, "action": "read", "resource": residents, "time": t,
	}
}

read_visits(subject, justification) := d if {
	d := sluice.decision with input as {
		"subject": subject, "action": "read", "resource": visits,
		"time": thursday_10am, "justification": justification,
	}
}

test_registrar_reads_own_district_in_office_hours if {
	d := read_residents(registrar, "residency-registration", thursday_10am)
	d.allow
	d.rows == [{"field": "district", "in": ["海淀区"]}]
	d.max_rows == 200
}

test_registrar_fields_follow_their_levels if {
	d := read_residents(registrar, "residency-registration", thursday_10am)
	d.fields == {
		"district": "keep",
		"gender": "keep",
		"id_number": "mask_id_cn",
		"name": {"op": "mask_name_cn", "width": "fixed"},
		"birth_date": {"op": "generalize", "to": "year"},
	}
	not d.fields.phone
	not d.fields.address
}

test_registrar_is_refused_outside_office_hours_and_told_why if {
	d := read_residents(registrar, "residency-registration", thursday_8pm)
	not d.allow
	d.reason == "registrar: outside office hours (Mon/Tue/Wed/Thu/Fri 08:30-17:30, UTC+8)"
}

test_registrar_needs_the_registration_purpose if {
	not read_residents(registrar, "", thursday_10am).allow
	not read_residents(registrar, "public-health", thursday_10am).allow
}

test_registrar_needs_a_district_and_the_police_department if {
	not read_residents(object.remove(registrar, ["district"]), "residency-registration", thursday_10am).allow
	not read_residents(object.union(registrar, {"dept": "civil"}), "residency-registration", thursday_10am).allow
}

test_responder_breaks_the_glass_with_a_justification if {
	d := read_visits(responder, "unconscious patient in ER, need prior visits")
	d.allow
	d.flags == ["break_glass"]
	d.fields.patient_name == "keep"
	d.fields.patient_id == "keep"
	not d.fields.cost
	d.max_rows == 20
	contains(d.reason, "BREAK-GLASS by erin")
	contains(d.reason, "unconscious patient in ER")
}

test_responder_without_a_justification_is_refused_and_flagged if {
	every j in ["", "urgent"] {
		d := read_visits(responder, j)
		not d.allow
		d.flags == ["break_glass_refused"]
		contains(d.reason, "Sluice-Justification")
	}
	d := sluice.decision with input as {"subject": responder, "action": "read", "resource": visits}
	d.flags == ["break_glass_refused"]
}

test_break_glass_is_only_for_responders_of_health if {
	not read_visits(object.union(responder, {"dept": "police"}), "unconscious patient in ER, need prior visits").allow
	not read_visits({"id": "pat", "roles": ["public"]}, "unconscious patient in ER, need prior visits").allow
}

test_a_role_that_grants_wins_over_a_refusal if {
	# An analyst who is also a responder reads as an analyst, without
	# breaking the glass.
	d := sluice.decision with input as {
		"subject": {"id": "ann", "roles": ["responder", "analyst"], "dept": "health"},
		"purpose": "public-health", "action": "read", "resource": visits,
	}
	d.allow
	not d.flags
	d.fields.patient_id == "drop"
	d.min_k == 5
}

test_officer_may_explain_and_nobody_else if {
	sluice.decision.allow with input as {"subject": {"id": "oscar", "roles": ["officer"]}, "action": "explain"}
	every role in ["analyst", "caseworker", "public", "auditor", "registrar", "responder"] {
		not sluice.decision.allow with input as {"subject": {"id": "x", "roles": [role]}, "action": "explain"}
	}
}

test_officer_may_revoke_tokens_and_nobody_else if {
	sluice.decision.allow with input as {"subject": {"id": "oscar", "roles": ["officer"]}, "action": "revoke"}
	every role in ["analyst", "caseworker", "public", "auditor", "registrar", "responder"] {
		not sluice.decision.allow with input as {"subject": {"id": "x", "roles": [role]}, "action": "revoke"}
	}
}

test_explaining_releases_nothing if {
	d := sluice.decision with input as {"subject": {"id": "oscar", "roles": ["officer"]}, "action": "explain"}
	not d.fields
	not d.stats
}
