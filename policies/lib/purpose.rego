# Purpose binding. data.registry.purposes lists the purposes a caller may
# state (Sluice-Purpose header, else the token's purpose claim), which roles
# may state each, and the datasets each covers per action ("*": all).
# Roles in data.registry.purpose_bound must state a purpose that covers
# what they ask for; other roles need none.
#
# Copy this into a grant's conditions:
#
#	purpose.permits("analyst", input.action, dataset)
package sluice.lib.purpose

# registered holds for a purpose the registry lists.
registered(p) if data.registry.purposes[p]

# permits holds when role may do action on dataset for input.purpose.
permits(role, _, _) if not role in data.registry.purpose_bound

permits(role, action, dataset) if {
	role in data.registry.purpose_bound
	p := data.registry.purposes[input.purpose]
	role in p.roles
	covers(p[action], dataset)
}

covers(datasets, _) if "*" in datasets

covers(datasets, dataset) if dataset in datasets
