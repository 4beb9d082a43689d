package sluice.lib.breakglass_test

import data.sluice.lib.breakglass

reason := "patient unconscious in ER, need prior visits"

test_a_long_enough_justification_is_stated if {
	breakglass.stated with input.justification as reason
	not breakglass.stated with input.justification as "because"
	not breakglass.stated with input.justification as "                              "
	not breakglass.stated with input as {}
}

test_mark_flags_the_decision_and_records_the_justification if {
	d := breakglass.mark({"allow": true, "reason": "emergency read", "max_rows": 5}) with input as {"subject": {"id": "erin"}, "justification": reason}
	d.allow
	d.max_rows == 5
	d.flags == ["break_glass"]
	contains(d.reason, "BREAK-GLASS by erin")
	contains(d.reason, reason)
}

test_the_refusal_is_a_flagged_deny_that_says_what_is_missing if {
	not breakglass.refusal.allow
	breakglass.refusal.flags == ["break_glass_refused"]
	contains(breakglass.refusal.reason, "Sluice-Justification")
}
