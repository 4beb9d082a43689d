package audit

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Counts counts records by decision.
type Counts struct {
	// Allow counts allowed requests.
	Allow uint64 `json:"allow"`
	// Deny counts denied ones, unauthenticated requests included.
	Deny uint64 `json:"deny"`
	// Error counts failed requests, and any other decision.
	Error uint64 `json:"error"`
}

// Total is the number of records counted.
func (c Counts) Total() uint64 { return c.Allow + c.Deny + c.Error }

func (c *Counts) add(decision []byte) {
	switch string(decision) {
	case "allow":
		c.Allow++
	case "deny":
		c.Deny++
	default:
		c.Error++
	}
}

// ConsumerCounts counts one caller's records for one dataset.
type ConsumerCounts struct {
	// Subject is the caller, "" for unauthenticated requests.
	Subject string `json:"subject"`
	// Source and Dataset are "" for requests not about a dataset.
	Source  string `json:"source,omitempty"`
	Dataset string `json:"dataset,omitempty"`
	Counts
}

// BucketCounts counts the records whose time falls in [Start,
// Start+bucket).
type BucketCounts struct {
	// Start is the start of the bucket, in UTC.
	Start time.Time `json:"start"`
	Counts
}

// Summary aggregates the records a query selects.
type Summary struct {
	// Counts are the totals.
	Counts
	// Consumers are the counts per subject and dataset, most records
	// first.
	Consumers []ConsumerCounts `json:"consumers"`
	// Buckets are the counts per time bucket, in time order; buckets
	// without records are left out.
	Buckets []BucketCounts `json:"buckets"`
}

// Summarize counts the requests whose records in the trail in dir match q
// (Limit, Cursor and Newest are ignored) by decision — a release's two
// records once, at its decision record (by its outcome when q asks for a
// status): in total, per subject and
// dataset, and per time bucket of the given width (none when bucket is not
// positive), aligned as time.Time.Truncate aligns them (hours and days
// start on the hour and at midnight UTC). It reads
// records without decoding them, as Search does.
func Summarize(ctx context.Context, dir string, q Query, bucket time.Duration) (*Summary, error) {
	q.Limit, q.Cursor, q.Newest = 0, "", false
	sum := &Summary{Consumers: []ConsumerCounts{}, Buckets: []BucketCounts{}}
	consumers := map[string]*ConsumerCounts{}
	buckets := map[int64]*BucketCounts{}
	var (
		tf  topFields
		key []byte
	)
	_, err := scanTrail(ctx, dir, &q, func(line []byte, pos position) (bool, error) {
		if !tf.scan(line, false) {
			return true, nil // not a record encoding/json wrote; Verify's business
		}
		if q.Status == 0 && string(tf.phase) == PhaseOutcome || string(tf.phase) == PhaseNames {
			// Its request is counted at its decision record. A query by
			// status selects outcomes only: decision records have none.
			// A names record is more of a release's outcome.
			return true, nil
		}
		sum.add(tf.decision)
		key = append(append(append(append(append(key[:0], tf.subject...), 0), tf.source...), 0), tf.dataset...)
		c, ok := consumers[string(key)]
		if !ok {
			c = &ConsumerCounts{Subject: jsonString(tf.subject), Source: jsonString(tf.source), Dataset: jsonString(tf.dataset)}
			consumers[string(key)] = c
		}
		c.add(tf.decision)
		if bucket > 0 {
			if t, ok := recordTime(line); ok {
				start := t.Truncate(bucket)
				b, ok := buckets[start.UnixNano()]
				if !ok {
					b = &BucketCounts{Start: start}
					buckets[start.UnixNano()] = b
				}
				b.add(tf.decision)
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range consumers {
		sum.Consumers = append(sum.Consumers, *c)
	}
	slices.SortFunc(sum.Consumers, func(a, b ConsumerCounts) int {
		if c := cmp.Compare(b.Total(), a.Total()); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Dataset, b.Dataset))
	})
	for _, b := range buckets {
		sum.Buckets = append(sum.Buckets, *b)
	}
	slices.SortFunc(sum.Buckets, func(a, b BucketCounts) int { return a.Start.Compare(b.Start) })
	return sum, nil
}
