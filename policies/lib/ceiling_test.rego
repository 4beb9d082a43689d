package sluice.lib.ceiling_test

import data.sluice.lib.ceiling

fields := {
	"district": {"type": "string", "level": "L1"},
	"diagnosis": {"type": "icd10", "level": "L3"},
	"patient_id": {"type": "id_cn", "level": "L4"},
}

cap(name, t) := c if {
	c := ceiling.cap(name, t) with input as {"resource": {"fields": fields}}
}

test_a_level_whose_ceiling_is_keep_releases_what_is_granted if {
	cap("district", "keep") == "keep"
	cap("diagnosis", {"op": "generalize", "to": "prefix", "length": 3}) == {"op": "generalize", "to": "prefix", "length": 3}
}

test_a_clear_l4_value_is_held_to_the_ceiling if {
	cap("patient_id", "keep") == "pseudonymize"
	cap("patient_id", {"op": "keep"}) == "pseudonymize"
	cap("patient_id", {"op": "mask", "keep_first": 18}) == "pseudonymize"
}

test_treatments_within_the_ceiling_pass if {
	cap("patient_id", "drop") == "drop"
	cap("patient_id", "redact") == "redact"
	cap("patient_id", {"op": "pseudonymize", "rotate": "90d"}) == {"op": "pseudonymize", "rotate": "90d"}
}

test_treatments_that_keep_part_of_an_l4_value_are_held_to_the_ceiling if {
	cap("patient_id", {"op": "mask_id_cn", "keep_first": 14}) == "pseudonymize"
	cap("patient_id", {"op": "generalize", "to": "prefix", "length": 18}) == "pseudonymize"
	cap("patient_id", {"op": "truncate", "length": 18}) == "pseudonymize"
}

test_ceiling_names_the_level_s_most if {
	cap("district", "ceiling") == "keep"
	cap("patient_id", "ceiling") == "pseudonymize"
}

test_an_undeclared_field_is_the_most_sensitive if {
	cap("bank_card", "keep") == "pseudonymize"
}
