// Package audit keeps Sluice's tamper-evident audit trail, and lets
// auditors verify and search it.
//
// Every request the gateway handles — allowed, denied, unauthenticated or
// failed — is described by an [Event]: one, or for a request the gateway
// proxies two with the same request id, the decision record written before
// the upstream is asked and the outcome record after ([Event.Phase]).
// [Log.Append] returns nil only after the event's record has been written
// and fsync'd; [Log.Begin] queues a record and returns at once, and its
// [Pending]'s Wait returns nil once it is durable; [Log.Queue] queues one
// nobody waits for. The gateway releases no response byte before the
// request's decision record, or its only record, is durable (design
// invariant 3, "audit before release"). If a record cannot be made
// durable, Append or Wait returns an error and the caller must release
// nothing. Records are group-committed: one writer goroutine writes and
// fsyncs a whole batch at once and tells every waiter the shared result,
// so success is never reported for a record that was not fsync'd.
//
// # The trail directory
//
// Records are JSON lines in segment files named trail-00000001.jsonl,
// trail-00000002.jsonl, ...; the Log starts a new segment when the current
// one would grow past [Options.SegmentMaxBytes] and, with
// [Options.RotateDaily], on each new UTC day. Each record carries a sequence
// number that is contiguous from 1 across the whole trail, the hash of the
// previous record, and its own SHA-256 hash over its exact bytes.
//
// With a checkpoint key ([Options.CheckpointKey]) the Log also appends
// signed [Checkpoint]s to checkpoints.jsonl in the same directory — every
// [Options.CheckpointEvery] records, every [Options.CheckpointInterval],
// before rotating a segment away and on Close — and hands the latest to a
// [Witness] kept elsewhere ([FileWitness], or the state backend), from a
// goroutine of its own so that a slow witness never holds up a commit. A
// checkpoint names the segment, byte size, seq and hash of the last record,
// the time span of that segment's records, and the hash of the checkpoint
// before it, and is signed with Ed25519.
//
// # Verifying
//
// [Verify] streams the trail and names the first problem: a record altered,
// removed, inserted, duplicated or reordered (the hash chain); a chain
// recomputed after such an edit (a checkpoint signed another head); a
// missing segment; records or segments cut off the end (a checkpoint covers
// more than the trail holds); checkpoints forged, edited, removed or
// reordered (signatures and the checkpoint chain); and checkpoints cut off
// along with the records they covered (the witness is ahead). Records
// written after the last checkpoint are only protected by the chain; the
// report says how many there are.
//
// # Searching
//
// [Search] (a page, with a cursor), [Scan] and [ScanRaw] (iterators) and
// [Summarize] (counts by decision, consumer and time) read the trail
// without verifying it. They stream segments, skip segments whose
// checkpointed time span lies outside the query's, and look for a query's
// values in a record's raw bytes before reading its fields, so that only
// matching records are decoded.
//
// No raw personal data belongs in the trail: identifiers in paths and query
// values are keyed-hashed with a [Hasher] before they reach an Event. The
// caller's own subject id is kept in clear: it says who asked, and auditors
// search by it.
package audit
