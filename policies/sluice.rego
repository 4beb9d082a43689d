# The demo policy of Sluice: who may read or count what, and in which form.
#
# The gateway asks for data.sluice.decision with the input described in
# DESIGN.md and docs/policies.md. A decision names every field it releases;
# anything not named is dropped by the gateway. Grants are per role; when a
# caller holds several roles, the first role in data.registry.precedence
# that grants the request decides. When none grants, the first refusal (a
# deny that says why) decides, else the default deny.
#
# The building blocks in lib/ (levels, purposes, office hours, district
# scoping, break-glass) are meant to be copied; the registrar and responder
# grants below show each in use.
package sluice

import data.sluice.lib.breakglass
import data.sluice.lib.ceiling
import data.sluice.lib.district
import data.sluice.lib.hours
import data.sluice.lib.levels
import data.sluice.lib.purpose

default decision := {"allow": false, "reason": "no rule grants this access"}

decision := grants[0] if {
	input.action in {"read", "stats"}
	count(grants) > 0
}

decision := refusals[0] if {
	input.action in {"read", "stats"}
	count(grants) == 0
	count(refusals) > 0
}

# Officers may ask the gateway what any caller would get (GET /v1/explain);
# explaining releases no data.
decision := {"allow": true, "reason": "officer: policy explain"} if {
	input.action == "explain"
	"officer" in input.subject.roles
}

# Officers revoke tokens (POST /admin/v1/revocations): every replica
# refuses a revoked token within a second. Revoking releases no data.
decision := {"allow": true, "reason": "officer: token revocation"} if {
	input.action == "revoke"
	"officer" in input.subject.roles
}

# Auditors search and verify the trail through the auditor API and page
# (/audit/v1/..., /audit/); those requests are audited too.
decision := {"allow": true, "reason": "auditor: audit trail review"} if {
	input.action == "audit"
	"auditor" in input.subject.roles
}

# A dataset is listed in the catalog when some role of the caller may read
# it or count it.
decision := {"allow": true, "reason": "listed: the caller may read or count this dataset"} if {
	input.action == "catalog"
	some action in ["read", "stats"]
	some role in input.subject.roles
	grant[role] with input.action as action
}

# A read under a sharing grant comes before any role's own grant: the
# steward who approved it chose exactly what it releases.
grants := array.concat(granted, [g |
	some role in data.registry.precedence
	role in input.subject.roles
	g := grant[role]
])

refusals := [r |
	some role in data.registry.precedence
	role in input.subject.roles
	r := refusal[role]
]

dataset := concat("/", [input.resource.source, input.resource.dataset])

# Reads under a sharing grant. A request approved by a steward of the
# owning department (the hub) becomes a grant; the gateway hands the
# policy the grants in force for the caller's department on this dataset
# (input.grants). A caller of that department with a role that may use
# its department's grants (data.registry.grant_roles), stating the grant's
# purpose, reads exactly the granted treatments — each held to its level's
# ceiling, so a steward cannot grant a clear ID number on an L4 field
# (lib/ceiling.rego) — with the grant's row cap and any k-anonymity the
# approval asked for, and the release names the grant in its audit record.
granted := [d |
	input.action == "read"
	some role in data.registry.grant_roles
	role in input.subject.roles
	some g in input.grants
	g.dept == input.subject.dept
	g.purpose == input.purpose
	g.dataset == dataset
	d := object.union(
		{
			"allow": true,
			"reason": sprintf("%s: %s read of %s under grant %s", [role, g.purpose, dataset, g.id]),
			"fields": {name: ceiling.cap(name, t) | some name, t in g.fields},
			"params": record_params,
			"max_rows": grant_rows(g),
			"grant": g.id,
		},
		grant_k(g),
	)
]

# grant_k is the k-anonymity the approval asked for, if any.
grant_k(g) := {k: g[k] | some k in ["min_k", "min_l"]; object.get(g, k, 0) > 0}

grant_rows(g) := g.max_rows if g.max_rows > 0

grant_rows(g) := 1000 if not g.max_rows > 0

record_params := ["district", "page", "page_size"]

# Analysts of the health department, working for public health, read visit
# records that point at no one: a k-anonymous view (min_k 5, min_l 3).
#
# Their work needs how often, where, when and at what cost people fall ill,
# not who: no patient ID, name or visit number, the date to the month, the
# cost to a 2,000-yuan band. min_k 5 releases a visit only when at least
# five patients share its district, hospital, month and cost band (the
# gateway counts patients, not visits: a chronic patient's many visits do
# not make a class large), and min_l 3 only when they have at least three
# diagnoses among them (five patients of one diagnosis would tell it of
# each); the rest is suppressed and counted in the answer. On the demo's
# 16,000 visits that withholds 1,606 (10.0%; k alone 1,590); a 1,000-yuan
# band would withhold 16%, a 5,000-yuan one 6.3% (docs/policies.md, "The
# demo's views").
#
# No pseudonym: one value per patient joins a patient's visits, and whoever
# knows two of them (a hospital in March, another in June) intersects the
# patients of two classes of five down to one, whatever k says. A
# longitudinal study that must follow patients asks for it under a grant,
# with a pseudonym scoped to the organisation and purpose
# ({"op": "pseudonymize"}: docs/policies.md, "Pseudonym scopes and
# rotation"), and answers for it as the grant's conditions say.
grant["analyst"] := {
	"allow": true,
	"reason": "analyst: public-health read of health visits",
	"fields": {
		"visit_id": "drop",
		"patient_id": "drop",
		"patient_name": "drop",
		"district": "keep",
		"hospital": "keep",
		"diagnosis": "keep",
		"visit_date": {"op": "generalize", "to": "month"},
		"cost": {"op": "generalize", "to": "bucket", "width": 2000},
	},
	"min_k": 5,
	"min_l": 3,
	"params": record_params,
	"max_rows": 1000,
} if {
	input.action == "read"
	dataset == "health/visits"
	input.subject.dept == "health"
	purpose.permits("analyst", "read", dataset)
}

# Analysts may count, sum and average, for public health, every dataset
# whose records they do not read: a caller that reads a dataset's records
# knows its exact counts, and noise on them would protect no one. (The
# gateway refuses such statistics whatever the policy says; `sluice policy
# lint` reports a policy that grants both.) Releases are charged to the
# "analyst" allocation of the dataset's population.
grant["analyst"] := {
	"allow": true,
	"reason": "analyst: public-health statistics",
	"stats": stats_limits("analyst", ["count", "sum", "mean"], 1.0, data.registry.stats[dataset].group_by),
	"params": ["district"],
} if {
	input.action == "stats"
	data.registry.stats[dataset]
	not reads_records
	input.subject.dept == "health"
	purpose.permits("analyst", "stats", dataset)
}

# The datasets each role reads records of (the read grants in this file).
# A caller holding any of these roles gets no statistics on those
# datasets, whichever other role would grant them: a token with roles
# caseworker and public must not count the cases it reads.
record_datasets := {
	"analyst": {"health/visits"},
	"caseworker": {"civil/assistance"},
	"registrar": {"police/residents"},
	"responder": {"health/visits"},
}

reads_records if {
	some role in input.subject.roles
	dataset in record_datasets[role]
}

# Researchers of the statistics bureau count, sum and average every
# dataset for research, charged to the "researcher" allocation; their
# organisation as a whole is capped too, so that more researcher
# identities buy no more budget.
grant["researcher"] := {
	"allow": true,
	"reason": "researcher: research statistics",
	"stats": stats_limits("researcher", ["count", "sum", "mean"], 1.0, data.registry.stats[dataset].group_by),
	"params": ["district"],
} if {
	input.action == "stats"
	data.registry.stats[dataset]
	input.subject.dept == "stats-bureau"
	purpose.permits("researcher", "stats", dataset)
	not reads_records
}

# stats_limits are the statistics limits of a role class: its metrics,
# its ε per query, the group-bys, the dataset's bounds, the allocation it
# is charged to and its consumer (and organisation) caps.
stats_limits(class, metrics, max_epsilon, group_by) := object.union(
	{
		"metrics": metrics,
		"max_epsilon": max_epsilon,
		"group_by": group_by,
		"bounds": data.registry.stats[dataset].bounds,
		"account": class,
	},
	data.registry.budgets[class],
)

# Caseworkers of the civil affairs department read the assistance cases of
# their own district, with identifiers masked: the ID to its region and last
# 4 (110105********1234), the name to its surname (欧阳*), the phone to its
# first 3 and last 4 (138****5678). The Chinese-format masks check what they
# mask: a value that is not a valid ID or mobile number is redacted, not
# masked by position.
#
# Caseworkers serve people at the counter and must recognise the person in
# front of them, so the identity-bearing forms stay: the last 4 of the ID
# and of the phone are what they compare with the card and the number the
# person gives. They cost something, and that is accepted for this purpose:
# the 17th ID digit tells the sex and the check digit narrows the hidden
# ones. The name, though, is masked to a fixed width (欧阳*, 李* for 李娜 and
# 李娜娜 alike): the given name's length helps no one at the counter, who has
# the ID's last 4, but splits every surname into smaller groups for anyone
# the record reaches. docs/policies.md, "When to use which".
grant["caseworker"] := {
	"allow": true,
	"reason": sprintf("caseworker: assistance cases of %s", [input.subject.district]),
	"fields": {
		"case_id": "keep",
		"id_number": "mask_id_cn",
		"name": {"op": "mask_name_cn", "width": "fixed"},
		"phone": "mask_phone_cn",
		"district": "keep",
		"household_size": "keep",
		"monthly_allowance": "keep",
		"start_date": "keep",
	},
	"rows": district.rows(input.subject),
	"params": record_params,
	"max_rows": 500,
} if {
	input.action == "read"
	dataset == "civil/assistance"
	input.subject.dept == "civil"
	district.scoped(input.subject)
}

# Registrars of the police department serve the household registration
# counter: in office hours, for that purpose, they read the residents of
# their own district. Fields up to L2 are kept by level; identifiers are
# masked, the birth date cut to the year, and phone and address (L4, not
# named) dropped.
#
# Like caseworkers, registrars recognise the person at the counter: the ID
# keeps its region and last 4 (mask_id_cn, which redacts a value that is
# not a valid ID instead of masking it by position), and the name is
# masked to a fixed width, since the given name's length serves no
# recognition the last 4 do not.
grant["registrar"] := {
	"allow": true,
	"reason": sprintf("registrar: residents of %s in office hours", [input.subject.district]),
	"fields": object.union(levels.keep_up_to(input.resource.fields, "L2"), {
		"id_number": "mask_id_cn",
		"name": {"op": "mask_name_cn", "width": "fixed"},
		"birth_date": {"op": "generalize", "to": "year"},
	}),
	"rows": district.rows(input.subject),
	"params": record_params,
	"max_rows": 200,
} if {
	registrar_request
	district.scoped(input.subject)
	purpose.permits("registrar", "read", dataset)
	hours.within(data.registry.office_hours.registrar)
}

refusal["registrar"] := {
	"allow": false,
	"reason": sprintf("registrar: outside office hours (%s)", [hours.describe(data.registry.office_hours.registrar)]),
} if {
	registrar_request
	not hours.within(data.registry.office_hours.registrar)
}

registrar_request if {
	input.action == "read"
	dataset == "police/residents"
	input.subject.dept == "police"
}

# Emergency responders of the health department may break the glass: with
# a stated justification they read visit records with the patient in clear,
# a few at a time, and every such read is flagged in the audit trail.
grant["responder"] := breakglass.mark({
	"allow": true,
	"reason": "responder: emergency read of health visits",
	"fields": {
		"visit_id": "keep",
		"patient_id": "keep",
		"patient_name": "keep",
		"district": "keep",
		"hospital": "keep",
		"diagnosis": "keep",
		"visit_date": "keep",
	},
	"params": record_params,
	"max_rows": 20,
}) if {
	responder_request
	breakglass.stated
}

refusal["responder"] := breakglass.refusal if {
	responder_request
	not breakglass.stated
}

responder_request if {
	input.action == "read"
	dataset == "health/visits"
	input.subject.dept == "health"
}

# The public may count and sum any dataset by district, with little
# epsilon, charged to the "public" allocation.
grant["public"] := {
	"allow": true,
	"reason": "public: statistics by district",
	"stats": stats_limits("public", ["count", "sum"], 0.5, ["district"]),
} if {
	input.action == "stats"
	data.registry.stats[dataset]
	not reads_records
}
