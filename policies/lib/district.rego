# District scoping. A caller whose token carries a district claim sees only
# the records of that district: the decision names a row filter, which the
# gateway applies to every record (and pushes down to the department's
# service where the dataset declares a district filter).
#
# Copy this into a grant:
#
#	"rows": district.rows(input.subject),
#
# with district.scoped(input.subject) among its conditions, so a caller
# without a district claim is not granted at all.
package sluice.lib.district

# scoped holds for a subject with a non-empty district claim.
scoped(subject) if {
	is_string(subject.district)
	subject.district != ""
}

# rows confine released records to the subject's district.
rows(subject) := [{"field": "district", "in": [subject.district]}] if scoped(subject)
