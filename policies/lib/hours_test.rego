package sluice.lib.hours_test

import data.sluice.lib.hours

# Monday to Friday, 08:30 to 17:30 in UTC+8.
window := {"utc_offset_hours": 8, "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], "from": "08:30", "to": "17:30"}

at(t) := {"time": t}

test_within_office_hours if {
	hours.within(window) with input as at("2026-11-26T02:00:00Z") # Thursday 10:00
}

test_from_is_inclusive_and_to_exclusive if {
	hours.within(window) with input as at("2026-11-26T00:30:00Z") # 08:30
	hours.within(window) with input as at("2026-11-26T09:29:59Z") # 17:29:59
	not hours.within(window) with input as at("2026-11-26T09:30:00Z") # 17:30
	not hours.within(window) with input as at("2026-11-26T00:29:00Z") # 08:29
}

test_outside_office_hours if {
	not hours.within(window) with input as at("2026-11-26T12:00:00Z") # Thursday 20:00
	not hours.within(window) with input as at("2026-11-28T02:00:00Z") # Saturday 10:00
}

test_the_day_is_the_local_day if {
	# Friday 20:00 UTC is Saturday 04:00 local; Sunday 23:00 UTC is
	# Monday 07:00 local, and Monday 00:30 UTC is Monday 08:30 local.
	not hours.within(window) with input as at("2026-11-27T20:00:00Z")
	not hours.within(window) with input as at("2026-11-29T23:00:00Z")
	hours.within(window) with input as at("2026-11-30T00:30:00Z")
}

test_offsets_other_than_utc_plus_8 if {
	utc := object.union(window, {"utc_offset_hours": 0})
	hours.within(utc) with input as at("2026-11-26T09:00:00Z")
	not hours.within(utc) with input as at("2026-11-26T02:00:00Z")
	hours.within(utc) with input as at("2026-11-26T17:00:00+08:00") # 09:00 UTC
}

test_no_time_is_not_within if {
	not hours.within(window) with input as {}
}

test_describe_renders_the_window if {
	hours.describe(window) == "Mon/Tue/Wed/Thu/Fri 08:30-17:30, UTC+8"
}
