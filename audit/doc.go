// Package audit keeps Sluice's tamper-evident audit trail.
//
// Every request the gateway handles — allowed, denied, unauthenticated or
// failed — is described by one [Event]. [Log.Append] returns nil only after
// the event's record has been written and fsync'd; the gateway releases no
// response byte before that (design invariant 3, "audit before release"). If
// the record cannot be made durable, Append returns an error and the caller
// must release nothing. Concurrent appends are group-committed: one writer
// goroutine writes and fsyncs a whole batch at once and tells every waiter
// the shared result, so success is never reported for a record that was not
// fsync'd.
//
// The trail is append-only and hash-chained. Records are JSON lines in
// segment files named trail-00000001.jsonl, trail-00000002.jsonl, ...; each
// record carries a sequence number that is contiguous from 1 across the
// whole trail, the hash of the previous record, and its own SHA-256 hash over
// its exact bytes. [Verify] streams the trail and names the first record that
// was altered, removed, inserted, duplicated or reordered, as well as garbage
// lines and missing segments. (Cutting records off the end of the trail is
// only detectable against an external checkpoint of the head.)
//
// No raw personal data belongs in the trail: identifiers in paths and query
// values are keyed-hashed with a [Hasher] before they reach an Event.
package audit
