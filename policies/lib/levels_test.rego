package sluice.lib.levels_test

import data.sluice.lib.levels

test_levels_rank_by_the_registry if {
	levels.rank("L1") == 1
	levels.rank("L4") == 4
	levels.at_most("L2", "L3")
	levels.at_most("L3", "L3")
	not levels.at_most("L4", "L3")
}

test_an_unknown_level_is_the_most_sensitive if {
	levels.rank("L9") > levels.rank("L4")
	not levels.at_most("secret", "L4")
}

test_keep_up_to_keeps_fields_by_level_and_drops_the_rest if {
	fields := {
		"district": {"type": "string", "level": "L1"},
		"gender": {"type": "string", "level": "L2"},
		"birth_date": {"type": "date", "level": "L3"},
		"id_number": {"type": "id_cn", "level": "L4"},
		"undeclared": {"type": "string"},
	}
	levels.keep_up_to(fields, "L2") == {"district": "keep", "gender": "keep"}
	levels.keep_up_to(fields, "L1") == {"district": "keep"}
	count(levels.keep_up_to(fields, "L4")) == 4
}
