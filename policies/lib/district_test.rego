package sluice.lib.district_test

import data.sluice.lib.district

test_a_district_claim_scopes_rows_to_it if {
	district.scoped({"district": "朝阳区"})
	district.rows({"district": "朝阳区"}) == [{"field": "district", "in": ["朝阳区"]}]
}

test_no_district_claim_scopes_nothing_and_grants_nothing if {
	not district.scoped({})
	not district.scoped({"district": ""})
	not district.scoped({"district": ["朝阳区", "海淀区"]})
	not district.rows({})
}
