package sluice.lib.purpose_test

import data.sluice.lib.purpose

test_registered_purposes_come_from_the_registry if {
	purpose.registered("public-health")
	not purpose.registered("marketing")
}

test_a_purpose_bound_role_needs_a_purpose_covering_the_request if {
	purpose.permits("analyst", "read", "health/visits") with input.purpose as "public-health"
	purpose.permits("analyst", "stats", "police/residents") with input.purpose as "public-health"
	not purpose.permits("analyst", "read", "police/residents") with input.purpose as "public-health"
	not purpose.permits("analyst", "read", "health/visits") with input.purpose as "statistics"
	not purpose.permits("analyst", "read", "health/visits") with input.purpose as "marketing"
	not purpose.permits("analyst", "read", "health/visits") with input as {}
}

test_a_purpose_only_serves_the_roles_it_lists if {
	not purpose.permits("registrar", "read", "health/visits") with input.purpose as "public-health"
	purpose.permits("registrar", "read", "police/residents") with input.purpose as "residency-registration"
}

test_roles_not_purpose_bound_need_no_purpose if {
	purpose.permits("caseworker", "read", "civil/assistance") with input as {}
	purpose.permits("public", "stats", "health/visits") with input.purpose as "anything"
}
