// Package dp releases differentially private counts, sums and means of
// record-level data, and adds calibrated noise to data an upstream has
// already aggregated.
//
// The noise and the aggregators come from Google's differential-privacy
// library (github.com/google/differential-privacy/go/v3), whose threat model
// leaves three things to its caller; this package does them:
//
//   - Contribution bounding. Every privacy unit contributes to at most
//     MaxPartitions partitions (chosen uniformly at random when it has more)
//     and once per partition: a count counts units, not records; for sums
//     and means a unit's values in a partition are summed first and the sum
//     is clamped to the bounds. Integer fields are summed with
//     BoundedSumInt64, so floating-point attacks on the sum do not apply.
//   - Partitions. A grouped release either reports every value of a public
//     domain (empty ones included; records outside it are dropped) at no
//     selection cost, or selects partitions with PreAggSelectPartition, which
//     costs its own share of ε and a δ. An ungrouped release reports the one
//     partition "" (the total).
//   - Accounting of one release. [Query.Loss] is a release's own (ε, δ)-DP
//     guarantee, its parts composed by [Compose]; [Query.Cost] is what it
//     adds to an account under the query's [Accounting]. Under Pure, ε's
//     and δ's add up and record-level releases add Laplace noise. Under
//     ZCDP, zero-concentrated DP's ρ's add up and record-level releases add
//     Gaussian noise, charged the ρ of the σ the library calibrates;
//     [EpsilonForRho] reports an account's (ε, δ) and [RhoForEpsilon] turns
//     an (ε, δ) budget into ρ. Budgets across releases are the caller's: it
//     charges a ledger with the cost before it releases (see package state).
//
// Parameters are checked when a release is set up, before any data is read:
// ε must lie in [MinEpsilon, MaxEpsilon] ([CheckEpsilon]) and a δ be at
// least MinDelta, and the library's own checks run then, on no data, so a
// release never fails for its parameters after the data was read.
//
// Noise for the mechanisms, and the sampling that bounds contributions, are
// injectable through [Options] so that tests can be deterministic; the
// defaults are the library's secure noise (Laplace, or Gaussian under ZCDP)
// and a sampler seeded from crypto/rand. Partition selection always uses
// the library's own secure randomness.
package dp
