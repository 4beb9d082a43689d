// Package usage is the usage index: which record releases held which
// person's records, so that a person (or an auditor for them) can see who
// used their data, and a correction can reach every department that
// received the wrong record.
//
// The index is derived from the audit trail and beside it: each record
// release's outcome record carries the keyed hashes of the privacy units
// and record ids it released ([audit.Released]); [FromRecord] turns such a
// record into an [Entry], and [Rebuild] rebuilds an index from a trail. The
// gateway adds an entry once the release's outcome record is durable and
// before the first byte is sent, so a release the trail holds is in the
// index, or is added when the gateway catches up at start ([CatchUp]).
//
// Two backends: [Bolt] (a bbolt file beside the trail, one gateway) and
// [Redis] (shared: with replicas, any replica answers for all).
package usage

import (
	"context"
	"time"
)

// Release is one record release as the index keeps it: what a person is
// told of a use of their data, and what an auditor reads.
type Release struct {
	// RequestID is the release's X-Request-Id, unique in the trail.
	RequestID string `json:"request_id"`
	// Replica is the name of the trail (replica) the release is in; "" for
	// a gateway without replicas.
	Replica string `json:"replica,omitempty"`
	// Seq is the release's outcome record's position in that trail.
	Seq uint64 `json:"seq"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// Dept is the consumer's department (organisation); Roles its roles;
	// Subject the person or app that asked (shown to auditors, not to the
	// person the data is about).
	Dept    string   `json:"dept,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	Subject string   `json:"subject,omitempty"`
	// Purpose is the declared purpose.
	Purpose string `json:"purpose,omitempty"`
	// Grant is the sharing grant the release was made under, if any;
	// Basis the policy's reason for allowing it.
	Grant string `json:"grant,omitempty"`
	Basis string `json:"basis,omitempty"`
	// Dataset is "source/dataset".
	Dataset string `json:"dataset"`
	// Fields are the fields released and their treatments.
	Fields map[string]string `json:"fields,omitempty"`
	// Rows is how many records the release held (of everyone).
	Rows int `json:"rows"`
	// Part is the position of the names record this entry was indexed
	// from among a large release's ([audit.PhaseNames]), 0 for its
	// outcome record. Answers hold each release once (see [Index.ByUnit]).
	Part int `json:"part,omitempty"`
}

// Entry is a release and whose records it held.
type Entry struct {
	Release
	// Units are the privacy-unit hashes ([audit.Hasher.Unit]).
	Units []string
	// Records are the record-id hashes ([audit.Hasher.Record]); empty when
	// the dataset's records are named by their privacy unit.
	Records []string
}

// Index finds releases by person and by record. Implementations are safe
// for concurrent use. Adding an entry again (same Replica and Seq) changes
// nothing.
type Index interface {
	// Add adds entries, durably, before it returns.
	Add(ctx context.Context, entries ...Entry) error
	// ByUnit returns the releases holding a record of the person whose
	// unit hash is unit, with since <= Time < until (either may be zero),
	// oldest first (by Time, then Replica, then Seq). A person of no
	// release has an empty, non-nil slice. A release indexed from several
	// records (a large one's names records and outcome, [Release.Part])
	// is returned once: by the entry of its outcome when that names the
	// person, else of its first names record that does (they differ in
	// Seq and Part only).
	ByUnit(ctx context.Context, unit string, since, until time.Time) ([]Release, error)
	// ByRecord returns the releases of dataset that held the record whose
	// hash is record, oldest first, as ByUnit does.
	ByRecord(ctx context.Context, dataset, record string) ([]Release, error)
	// Head is the highest Seq indexed from replica's trail, 0 for none.
	Head(ctx context.Context, replica string) (uint64, error)
	// Reset empties the index (before a rebuild).
	Reset(ctx context.Context) error
	// Close releases the index's resources.
	Close() error
}
