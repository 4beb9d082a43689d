package audit

import "time"

// The phases of a proxied release's two records (see [Event.Phase]).
const (
	// PhaseDecision is the record of who asked for what, the decision,
	// its obligations and the policy revision, written while the upstream
	// is asked and durable before any byte is released.
	PhaseDecision = "decision"
	// PhaseOutcome is the record written after it, with the same request
	// id: the status answered, the rows and bytes released and the
	// obligations' fallbacks. A decision record without one means the
	// gateway stopped before the request ended.
	PhaseOutcome = "outcome"
	// PhaseNames is a record naming more of the people a large release
	// held, written before its outcome record: a release names at most
	// [MaxNames] people and records in one record, and the rest in names
	// records, each a record of the release's own (same request id, who,
	// what and decision) that the usage index takes as it takes the
	// outcome.
	PhaseNames = "names"
)

// MaxNames is the most unit and record hashes one record holds (some
// 100 KB of JSON): a release naming more writes names records before its
// outcome record. Small, because each names record is also one addition
// to the usage index, whose transaction holds its new keys in memory (at
// 65,536 names a large release's index additions took 280 MiB of heap).
// A variable so that a test can make releases large cheaply.
var MaxNames = 4096

// Event is one audit record: who asked for what, what the policy decided,
// what the release was obliged to do, and how the request ended. The gateway
// fills every field except Seq and Prev, which the [Log] sets. Identifiers
// and query values must already be keyed-hashed (see [Hasher]).
type Event struct {
	// Seq is the record's position in the trail, 1-based and contiguous
	// across all segments. Set by the Log.
	Seq uint64 `json:"seq"`
	// Prev is the hex SHA-256 hash of the previous record, "" for the first
	// record. Set by the Log.
	Prev string `json:"prev"`
	// Time is when the request arrived, in UTC. The Log fills it from
	// [Options.Now] when it is zero.
	Time time.Time `json:"time"`
	// RequestID is the id the gateway returns in X-Request-Id.
	RequestID string `json:"request_id"`
	// Subject is the authenticated caller, empty when authentication failed.
	Subject string `json:"subject,omitempty"`
	// Roles are the caller's roles from the token.
	Roles []string `json:"roles,omitempty"`
	// Purpose is the declared purpose of the access.
	Purpose string `json:"purpose,omitempty"`
	// Client identifies the calling application or address.
	Client string `json:"client,omitempty"`
	// Org is the caller's organisation (the token's dept claim, else azp
	// or client_id); empty when it names none.
	Org string `json:"org,omitempty"`
	// Action is what was asked for: read, stats, catalog, ...
	Action string `json:"action"`
	// Phase is set on the two records of a proxied release: PhaseDecision
	// on the one made durable before the upstream is asked (Status 0),
	// PhaseOutcome on the one that says how the request ended; and
	// PhaseNames on the records naming more people of a large release
	// (Status 0). Every other request has one record, without a phase.
	Phase string `json:"phase,omitempty"`
	// Source is the department whose data was asked for.
	Source string `json:"source,omitempty"`
	// Dataset is the dataset within Source.
	Dataset string `json:"dataset,omitempty"`
	// Grant is the sharing grant a release was made under.
	Grant string `json:"grant,omitempty"`
	// Object is the hub object a hub action is about: a request (req_…),
	// a grant (grt_…) or a demand (dmd_…).
	Object string `json:"object,omitempty"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the route template, with identifiers keyed-hashed by the
	// caller.
	Path string `json:"path"`
	// Query holds the query parameters, values keyed-hashed by the caller.
	Query map[string][]string `json:"query,omitempty"`
	// Decision is what the caller got: allow (an answer), deny (a
	// refusal, also one after the policy allowed), or error (a failure).
	Decision string `json:"decision"`
	// Reason explains the decision.
	Reason string `json:"reason,omitempty"`
	// Stage names the step that refused or failed the request
	// (authenticate, rate_limit, policy, parameters, request, lookup,
	// route, method, budget, limits, upstream, gateway); empty when the
	// request was answered.
	Stage string `json:"stage,omitempty"`
	// Change is the state change a hub action made of Object; nil for
	// none.
	Change *StateChange `json:"change,omitempty"`
	// Obligations is what the decision required of the release.
	Obligations *Obligations `json:"obligations,omitempty"`
	// Rows is the number of records released.
	Rows int `json:"rows"`
	// Status is the HTTP status answered.
	Status int `json:"status"`
	// Code is the error code when Status >= 400.
	Code string `json:"code,omitempty"`
	// Bytes is the size of the response body released.
	Bytes int64 `json:"bytes"`
	// DurationMS is how long the request took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// PolicyRevision identifies the policy set that made the decision.
	PolicyRevision string `json:"policy_revision,omitempty"`
	// EpsilonRequested is the ε a statistics request asked to spend,
	// recorded for refusals too (what it spent is in Obligations).
	EpsilonRequested float64 `json:"epsilon_requested,omitempty"`
	// Flags are markers the decision asked to be recorded, e.g.
	// "break_glass" for emergency access a reviewer must look at.
	Flags []string `json:"flags,omitempty"`
	// Shadow is how the shadow policy set, evaluated beside the active one
	// and never enforced, would have decided differently; nil when it
	// agreed or none is configured.
	Shadow *ShadowDiff `json:"shadow,omitempty"`
	// Released says whose records a record release released, in keyed
	// hashes: it is what the usage index is built from. Set on the
	// outcome record of a release of at least one record.
	Released *Released `json:"released,omitempty"`
}

// Released is whose records a record release held. Its hashes are short
// keyed hashes ([Hasher.Unit], [Hasher.Record]): the same person (or
// record) always hashes alike under one key, so the usage index finds a
// person's releases by their hash, and the trail never holds the value.
type Released struct {
	// Units are the hashes of the privacy-unit values of the released
	// records, each once, in the order first released: every person a
	// record of the release was about, however many (beyond [MaxNames],
	// together with the release's names records).
	Units []string `json:"units,omitempty"`
	// Records are the hashes of the released records' ids, each once,
	// when the dataset's id field is not its privacy unit (otherwise the
	// units name the records too).
	Records []string `json:"records,omitempty"`
	// Disputed counts the released records under an open objection, each
	// marked so in the answer.
	Disputed int `json:"disputed,omitempty"`
	// Part is a names record's position among the release's names
	// records, from 1; 0 on the outcome record.
	Part int `json:"part,omitempty"`
	// Parts is, on the outcome record, how many names records of the
	// release precede it: its people are those of all of them and its own.
	// Each record names a person (or record) once; a person of a release
	// named in several records may be named in more than one.
	Parts int `json:"parts,omitempty"`
}

// StateChange is a hub object's move from one state to another ("" for
// From when the action created it).
type StateChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ShadowDiff is a shadow policy set's disagreement with the active one.
type ShadowDiff struct {
	// Revision identifies the shadow policy set.
	Revision string `json:"revision"`
	// Differences list what the shadow would release differently, each as
	// "what: active → shadow", e.g. "allow: true → false" or
	// "fields.patient_id: pseudonymize → drop".
	Differences []string `json:"differences"`
}

// Obligations is what the decision required of the release.
type Obligations struct {
	// Fields maps a field path to the operator applied to it ("keep",
	// "pseudonymize", "mask", ...).
	Fields map[string]string `json:"fields,omitempty"`
	// Dropped lists fields of the dataset schema that were dropped.
	Dropped []string `json:"dropped,omitempty"`
	// Rows lists the row filters in readable form, e.g.
	// "district in [朝阳区]", with values as the policy gave them.
	Rows []string `json:"rows,omitempty"`
	// Params lists the query parameters forwarded upstream.
	Params []string `json:"params,omitempty"`
	// MaxRows is the cap on released records, 0 for none.
	MaxRows int `json:"max_rows,omitempty"`
	// Fallbacks counts values redacted because their operator could not
	// handle them.
	Fallbacks int `json:"fallbacks,omitempty"`
	// Suppressed counts records removed by small-cell suppression, or
	// by k-anonymity at release.
	Suppressed int `json:"suppressed,omitempty"`
	// MinK and MinL are a read's k-anonymity at release: records of
	// classes of fewer people, or of fewer distinct sensitive values, are
	// suppressed.
	MinK int `json:"min_k,omitempty"`
	MinL int `json:"min_l,omitempty"`
	// Population, Allocation and Period name the account a statistics
	// release is charged to: the population its privacy unit belongs to,
	// the allocation (role class) charged, and the start of the budget
	// period ("" when the budget never renews). Accounting is the
	// accountant, "pure" or "zcdp".
	Population string `json:"population,omitempty"`
	Allocation string `json:"allocation,omitempty"`
	Period     string `json:"period,omitempty"`
	Accounting string `json:"accounting,omitempty"`
	// EpsilonSpent, RhoSpent and DeltaSpent are what a statistics release
	// charged to the privacy budget ledger (ρ under zCDP accounting): 0
	// for a cached answer or a refusal before the charge.
	EpsilonSpent float64 `json:"epsilon_spent,omitempty"`
	RhoSpent     float64 `json:"rho_spent,omitempty"`
	DeltaSpent   float64 `json:"delta_spent,omitempty"`
	// ConsumerBudget and OrgBudget are the ε caps of a statistics
	// decision: the caller's and its organisation's on the population.
	ConsumerBudget float64 `json:"consumer_budget,omitempty"`
	OrgBudget      float64 `json:"org_budget,omitempty"`
}
