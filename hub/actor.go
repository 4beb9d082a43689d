package hub

// Actor is whoever asks for a transition: a person, as the gateway knows
// them from their token, or [System] (the clock: escalation, expiry, and
// the approval of unconditional sharing).
//
// The hub decides what an actor may do from its relation to the object
// (see [Relation]); the gateway's policy decides beforehand whether a
// token may take a kind of action at all (request.decide, grant.revoke).
type Actor struct {
	// Subject is the token's subject; an actor without one is nobody and
	// may do nothing.
	Subject string
	// Dept is the department the token speaks for.
	Dept string
	// Steward is true when the actor is a data steward of Dept.
	Steward bool
	// Coordinator is true when the actor is the data authority's
	// coordinator, who takes what is overdue.
	Coordinator bool

	system bool
}

// System is the hub itself acting on the clock. No token can pose as it:
// the flag that marks it is unexported.
var System = Actor{Subject: "sluice", system: true}

// IsSystem reports whether a is [System].
func (a Actor) IsSystem() bool { return a.system }

// Principal names a person in a department: who made a request or a
// demand.
type Principal struct {
	// Subject is the token's subject.
	Subject string `json:"subject"`
	// Dept is the department the token spoke for.
	Dept string `json:"dept"`
}

// Relation is what an actor is to an object, which is what a transition
// table names as who may make it.
type Relation string

// The relations.
const (
	// AsRequester: the subject, in the department, that created the
	// request or demand (or the request a grant came from), or filed the
	// objection.
	AsRequester Relation = "requester"
	// AsOwnerSteward: a steward of the department owning the dataset
	// (for a demand: the department asked), who is not the requester.
	AsOwnerSteward Relation = "owner_steward"
	// AsCoordinator: the coordinator, who is not the requester.
	AsCoordinator Relation = "coordinator"
	// AsSystem: [System].
	AsSystem Relation = "system"
	// AsRecipient: a person of a department that received the record an
	// objection is about (as the gateway found in the trail, see
	// [Eligibility]), or of the department a notice is sent to.
	AsRecipient Relation = "recipient"
	// AsDataSubject: the person a record is about, objecting to it (see
	// [Eligibility]).
	AsDataSubject Relation = "data_subject"
)

// Party is an actor as the history of an object records it: who, and in
// which relation they acted.
type Party struct {
	Subject string   `json:"subject"`
	Dept    string   `json:"dept,omitempty"`
	As      Relation `json:"as"`
}

// relations returns the relations a holds to an object that requester
// created and owner owns, and whether a is the requester's subject acting
// in a relation that would let them decide on their own object: no one
// approves their own request, not even as a steward of the owning
// department or as the coordinator, and not from another department.
func relations(a Actor, requester Principal, owner string) (held []Relation, self bool) {
	switch {
	case a.system:
		return []Relation{AsSystem}, false
	case a.Subject == "":
		return nil, false
	}
	if a.Subject == requester.Subject && a.Dept == requester.Dept {
		held = append(held, AsRequester)
	}
	if a.Subject == requester.Subject {
		return held, (a.Steward && a.Dept == owner) || a.Coordinator
	}
	if a.Steward && a.Dept == owner {
		held = append(held, AsOwnerSteward)
	}
	if a.Coordinator {
		held = append(held, AsCoordinator)
	}
	return held, false
}
