# Office-hours windows. A window is data, e.g. in data.registry.office_hours:
#
#	{"utc_offset_hours": 8, "days": ["Monday", ..., "Friday"],
#	 "from": "08:30", "to": "17:30"}
#
# and is read against input.time (the request's arrival, RFC 3339) shifted
# to the window's fixed UTC offset, so no time zone database is needed.
#
# Copy this into a grant's conditions:
#
#	hours.within(data.registry.office_hours.registrar)
package sluice.lib.hours

# within holds when input.time falls inside window w: on one of its days,
# at or after "from" and before "to".
within(w) if {
	ns := local_ns(w)
	time.weekday(ns) in w.days
	[h, m, _] := time.clock(ns)
	mins := (h * 60) + m
	mins >= minutes(w.from)
	mins < minutes(w.to)
}

# describe renders a window for a deny reason.
describe(w) := sprintf("%s %s-%s, UTC%+d", [concat("/", [substring(d, 0, 3) | some d in w.days]), w.from, w.to, w.utc_offset_hours])

local_ns(w) := time.parse_rfc3339_ns(input.time) + ((w.utc_offset_hours * 3600) * 1000000000)

minutes(hhmm) := (to_number(parts[0]) * 60) + to_number(parts[1]) if {
	parts := split(hhmm, ":")
	count(parts) == 2
}
