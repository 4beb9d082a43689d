package usage

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxHash bounds a unit or record hash. Hashes are 22 characters
// ([audit.Hasher.Unit]); the bound only keeps a bad entry from making
// keys of any length.
const maxHash = 64

// key names a release in errors and in Redis: its replica and its seq.
func (r *Release) key() string { return r.Replica + ":" + strconv.FormatUint(r.Seq, 10) }

// check refuses an entry neither backend can key: its hashes must be short
// keyed hashes (unpadded base64url), and its replica and dataset must not
// hold NUL, which the embedded index uses to end them in its keys.
func (e *Entry) check() error {
	switch {
	case e.Seq == 0:
		return fmt.Errorf("usage: release %q has no seq: it is not from a trail", e.RequestID)
	case strings.ContainsRune(e.Replica, 0):
		return fmt.Errorf("usage: release %s: replica holds NUL", e.key())
	case strings.ContainsRune(e.Dataset, 0):
		return fmt.Errorf("usage: release %s: dataset holds NUL", e.key())
	}
	for _, hs := range [...]struct {
		what   string
		hashes []string
	}{{"unit", e.Units}, {"record", e.Records}} {
		for _, h := range hs.hashes {
			if !isHash(h) {
				return fmt.Errorf("usage: release %s: %s hash %q is not a short keyed hash", e.key(), hs.what, h)
			}
		}
	}
	return nil
}

// isHash reports whether h can be a short keyed hash: 1 to maxHash
// characters of the base64url alphabet.
func isHash(h string) bool {
	if h == "" || len(h) > maxHash {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !base64url[h[i]] {
			return false
		}
	}
	return true
}

// base64url marks the bytes of the unpadded base64url alphabet.
var base64url = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// checkAll checks every entry of an Add before anything is written, so
// that a bad entry adds nothing.
func checkAll(entries []Entry) error {
	for i := range entries {
		if err := entries[i].check(); err != nil {
			return err
		}
	}
	return nil
}

// within reports whether since <= t < until, either bound zero for none.
func within(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}

// sortReleases puts releases in the order the Index promises: by Time,
// then Replica, then Seq.
func sortReleases(rels []Release) {
	slices.SortFunc(rels, func(a, b Release) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Replica, b.Replica), cmp.Compare(a.Seq, b.Seq))
	})
}

// Ordered sorts releases as an [Index] answers them and keeps each release once:
// a large release is indexed from each of its records (its names records
// and its outcome), and is answered by its outcome's entry when that is
// among rels, else by the first names record's among them (the outcome
// does not name the person, or the gateway stopped before writing it,
// after the records may have left).
func Ordered(rels []Release) []Release {
	sortReleases(rels)
	if !slices.ContainsFunc(rels, func(r Release) bool { return r.Part != 0 }) {
		return rels
	}
	type key struct{ replica, request string }
	at := map[key]int{}
	out := rels[:0]
	for _, r := range rels {
		k := key{r.Replica, r.RequestID}
		i, ok := at[k]
		switch {
		case !ok:
			at[k] = len(out)
			out = append(out, r)
		case r.Part == 0 || out[i].Part != 0 && r.Part < out[i].Part:
			out[i] = r
		}
	}
	return out
}
