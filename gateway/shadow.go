package gateway

import (
	"context"
	"slices"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/policy"
)

// shadowState is the shadow policy set one request is compared with: taken
// once, like the active set, so a request never sees two shadow
// revisions.
type shadowState struct {
	set *policy.Set
}

// shadowDecide evaluates the shadow policy set, if one is configured, on
// the same input as the active decision d, and records in the audit event
// how it would have decided differently. The shadow is never enforced: its
// failures are logged, and it changes nothing the caller gets.
func (s *Server) shadowDecide(ctx context.Context, x *exchange, in *policy.Input, d *policy.Decision) {
	if s.shadow == nil {
		return
	}
	if x.shadow == nil {
		x.shadow = &shadowState{set: s.shadow.Current()}
	}
	set := x.shadow.set
	if set == nil {
		return
	}
	sd, err := set.Decide(ctx, in)
	if err != nil {
		s.log.Warn("shadow policy decision failed", "request_id", x.id, "revision", set.Revision(), "error", err)
	}
	diffs := policy.Diff(d, sd)
	if len(diffs) == 0 {
		return
	}
	// A request that decides several times (the catalog) says which
	// decision each difference is about.
	if r := in.Resource; r != nil && (r.Source != x.ev.Source || r.Dataset != x.ev.Dataset || in.Action != x.ev.Action) {
		for i, diff := range diffs {
			diffs[i] = r.Source + "/" + r.Dataset + " " + in.Action + ": " + diff
		}
	}
	if x.ev.Shadow == nil {
		x.ev.Shadow = &audit.ShadowDiff{Revision: set.Revision()}
		s.shadowDiffs.Inc()
	}
	x.ev.Shadow.Differences = append(x.ev.Shadow.Differences, diffs...)
}

// flag records the markers a decision asks the audit trail to carry.
func flag(x *exchange, d *policy.Decision) {
	for _, f := range d.Flags {
		if !slices.Contains(x.ev.Flags, f) {
			x.ev.Flags = append(x.ev.Flags, f)
		}
	}
}
