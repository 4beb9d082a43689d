// Package anonymize turns an upstream's records into what a decision releases.
//
// It guarantees default drop: a field the decision does not name never
// appears in the output, at any depth, and anything in an upstream body
// outside the records and the configured pass-through metadata is dropped.
// Records are transformed one at a time, so a body of any size passes in
// memory bounded by its largest record. Operators are looked up in a
// registry by name (OPERATORS.md lists them); an operator that cannot
// handle a value falls back to redaction, never to the raw value, and the
// fallback is counted. Records are released only when every row condition
// holds and, with small-cell suppression, their count is large enough;
// max_rows caps what is left.
package anonymize
