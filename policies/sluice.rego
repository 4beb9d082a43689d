# The demo policy of Sluice: who may read or count what, and in which form.
#
# The gateway asks for data.sluice.decision with the input described in
# DESIGN.md. A decision names every field it releases; anything not named
# is dropped by the gateway. Grants are per role; when a caller holds
# several roles, the first role in data.registry.precedence that grants the
# request decides.
package sluice

default decision := {"allow": false, "reason": "no rule grants this access"}

decision := grants[0] if {
	input.action in {"read", "stats"}
	count(grants) > 0
}

# A dataset is listed in the catalog when some role of the caller may read
# it or count it.
decision := {"allow": true, "reason": "listed: the caller may read or count this dataset"} if {
	input.action == "catalog"
	some action in ["read", "stats"]
	some role in input.subject.roles
	grant[role] with input.action as action
}

grants := [g |
	some role in data.registry.precedence
	role in input.subject.roles
	g := grant[role]
]

dataset := concat("/", [input.resource.source, input.resource.dataset])

record_params := ["district", "page", "page_size"]

# Analysts of the health department, working for public health, read visit
# records with the patient pseudonymised and the visit date coarsened.
grant["analyst"] := {
	"allow": true,
	"reason": "analyst: public-health read of health visits",
	"fields": {
		"visit_id": "keep",
		"patient_id": "pseudonymize",
		"patient_name": "drop",
		"district": "keep",
		"hospital": "keep",
		"diagnosis": "keep",
		"visit_date": {"op": "generalize", "to": "month"},
		"cost": "keep",
	},
	"params": record_params,
	"max_rows": 1000,
} if {
	input.action == "read"
	dataset == "health/visits"
	input.subject.dept == "health"
	input.purpose == "public-health"
}

# Analysts may count, sum and average any dataset for public health.
grant["analyst"] := {
	"allow": true,
	"reason": "analyst: public-health statistics",
	"stats": {
		"metrics": ["count", "sum", "mean"],
		"max_epsilon": 1.0,
		"group_by": data.registry.stats[dataset].group_by,
		"bounds": data.registry.stats[dataset].bounds,
		"consumer_budget": data.registry.budgets.analyst,
		"dataset_budget": data.registry.budgets.dataset,
	},
	"params": ["district"],
} if {
	input.action == "stats"
	data.registry.stats[dataset]
	input.subject.dept == "health"
	input.purpose == "public-health"
}

# Caseworkers of the civil affairs department read the assistance cases of
# their own district, with identifiers masked.
grant["caseworker"] := {
	"allow": true,
	"reason": sprintf("caseworker: assistance cases of %s", [input.subject.district]),
	"fields": {
		"case_id": "keep",
		"id_number": {"op": "mask", "keep_first": 6, "keep_last": 4},
		"name": "mask_name_cn",
		"phone": {"op": "mask", "keep_first": 3, "keep_last": 4},
		"district": "keep",
		"household_size": "keep",
		"monthly_allowance": "keep",
		"start_date": "keep",
	},
	"rows": [{"field": "district", "in": [input.subject.district]}],
	"params": record_params,
	"max_rows": 500,
} if {
	input.action == "read"
	dataset == "civil/assistance"
	input.subject.dept == "civil"
	is_string(input.subject.district)
	input.subject.district != ""
}

# The public may count and sum any dataset by district, with little epsilon.
grant["public"] := {
	"allow": true,
	"reason": "public: statistics by district",
	"stats": {
		"metrics": ["count", "sum"],
		"max_epsilon": 0.5,
		"group_by": ["district"],
		"bounds": data.registry.stats[dataset].bounds,
		"consumer_budget": data.registry.budgets.public,
		"dataset_budget": data.registry.budgets.dataset,
	},
} if {
	input.action == "stats"
	data.registry.stats[dataset]
}
