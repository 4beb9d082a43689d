package usage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openBolt(t testing.TB, path string) *Bolt {
	t.Helper()
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBolt(t *testing.T) {
	testIndex(t, func(t *testing.T) Index { return openBolt(t, filepath.Join(t.TempDir(), "usage.db")) })
}

func TestBoltKeepsTheIndexWhenReopened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit", "usage.db")
	b := openBolt(t, path)
	add(t, b, entry("gw-1", 3, 0, "alice"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBolt(t, path)
	if got := seqs(byUnit(t, b, "alice", time.Time{}, time.Time{})); len(got) != 1 || got[0] != "gw-1:3" {
		t.Errorf("reopened, ByUnit = %v, want [gw-1:3]", got)
	}
	if got := head(t, b, "gw-1"); got != 3 {
		t.Errorf("reopened, Head = %d, want 3", got)
	}
}

func TestBoltNamesACorruptReleaseInsteadOfPanicking(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "usage.db"))
	add(t, b, entry("gw-1", 7, 0, "alice"))
	err := b.db.Update(func(tx *bolt.Tx) error {
		k := binary.BigEndian.AppendUint64([]byte{0, 1}, 7) // replica number 1, seq 7
		return tx.Bucket(releasesBucket).Put(k, []byte(`{"seq":`))
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.ByUnit(context.Background(), "alice", time.Time{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), `corrupt release "gw-1":7`) {
		t.Errorf("ByUnit of a corrupt release = %v, want an error naming it", err)
	}
}

func TestBoltNamesACorruptPostingChunk(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "usage.db"))
	add(t, b, entry("", 1, 0, "alice"))
	err := b.db.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(unitsBucket).Cursor().First()
		return tx.Bucket(unitsBucket).Put(k, []byte("short"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ByUnit(context.Background(), "alice", time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "corrupt posting chunk") {
		t.Errorf("ByUnit = %v, want a corrupt posting chunk", err)
	}
	if err := b.Add(context.Background(), entry("", 2, 1, "alice")); err == nil || !strings.Contains(err.Error(), "corrupt posting chunk") {
		t.Errorf("Add = %v, want a corrupt posting chunk", err)
	}
}

// TestBoltPostingChunksStayKeyedSortedAndBounded walks the posting lists
// after additions in a random order: each chunk is keyed by its first
// posting, holds at most chunkPostings, and a list's postings ascend
// across its chunks.
func TestBoltPostingChunksStayKeyedSortedAndBounded(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "usage.db"))
	rng := rand.New(rand.NewPCG(3, 4))
	perm := rng.Perm(1000)
	for len(perm) > 0 {
		n := min(len(perm), 1+rng.IntN(40))
		var entries []Entry
		for _, i := range perm[:n] {
			entries = append(entries, entry(fmt.Sprintf("gw-%d", i%3), uint64(i+1), rng.IntN(100), "alice", fmt.Sprintf("p%d", i%4)))
		}
		add(t, b, entries...)
		perm = perm[n:]
	}
	lists := map[string]int{}
	err := b.db.View(func(tx *bolt.Tx) error {
		var prev []byte // the last posting of the list walked
		prevList := ""
		return tx.Bucket(unitsBucket).ForEach(func(k, v []byte) error {
			list, first := string(k[:len(k)-postingSize]), k[len(k)-postingSize:]
			if list != prevList {
				prev, prevList = nil, list
			}
			switch {
			case len(v) == 0 || len(v)%postingSize != 0:
				t.Fatalf("chunk %q holds %d bytes", k, len(v))
			case len(v) > chunkPostings*postingSize:
				t.Errorf("chunk %q holds %d postings, more than %d", k, len(v)/postingSize, chunkPostings)
			case !bytes.Equal(first, v[:postingSize]):
				t.Errorf("chunk %q is not keyed by its first posting", k)
			}
			for ; len(v) > 0; v = v[postingSize:] {
				if prev != nil && bytes.Compare(prev, v[:postingSize]) >= 0 {
					t.Errorf("list %q: postings do not ascend at chunk %q", list, k)
				}
				prev = bytes.Clone(v[:postingSize])
				lists[list]++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := lists["alice\x00"]; got != 1000 {
		t.Errorf("alice's list holds %d postings, want 1000", got)
	}
	for i := range 4 {
		if got := lists[fmt.Sprintf("p%d\x00", i)]; got != 250 {
			t.Errorf("p%d's list holds %d postings, want 250", i, got)
		}
	}
}

// A release naming thousands is kept as one run, sorted, and not in the
// posting lists: the addition writes a few sequential pages, not a page
// per person. A corrupt run is named, not read past.
func TestBoltKeepsAReleaseNamingThousandsAsOneRun(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "usage.db"))
	large := entry("gw-1", 9, 0)
	for i := range runMin {
		large.Units = append(large.Units, fmt.Sprintf("u%021d", runMin-i))
	}
	large.Records = []string{fmt.Sprintf("r%021d", 1)}
	add(t, b, large, entry("gw-1", 3, 0, "alice"))
	count := func(tx *bolt.Tx, bucket []byte) int { return tx.Bucket(bucket).Stats().KeyN }
	err := b.db.View(func(tx *bolt.Tx) error {
		if n, u, r := count(tx, runsBucket), count(tx, unitsBucket), count(tx, recordsBucket); n != 1 || u != 1 || r != 0 {
			t.Errorf("%d runs, %d unit chunks, %d record chunks; want 1, 1 (alice's), 0", n, u, r)
		}
		_, v := tx.Bucket(runsBucket).Cursor().First()
		run, err := decodeRun(v)
		if err != nil {
			return err
		}
		nUnits, nRecords := len(run.units)/runName, len(run.records)/runName
		if nUnits != runMin || nRecords != 1 || string(run.dataset) != "civil/persons" {
			t.Errorf("run of %d units, %d records, of %q", nUnits, nRecords, run.dataset)
		}
		for i := 1; i < nUnits; i++ {
			if bytes.Compare(run.units[(i-1)*runName:i*runName], run.units[i*runName:(i+1)*runName]) >= 0 {
				t.Fatalf("the run's units do not ascend at %d", i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(byUnit(t, b, fmt.Sprintf("u%021d", 7), time.Time{}, time.Time{})); !slices.Equal(got, []string{"gw-1:9"}) {
		t.Errorf("ByUnit of a person of the run = %v", got)
	}

	err = b.db.Update(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(runsBucket).Cursor().First()
		return tx.Bucket(runsBucket).Put(bytes.Clone(k), bytes.Clone(v[:len(v)-1]))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ByUnit(context.Background(), "alice", time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "corrupt run") {
		t.Errorf("ByUnit past a corrupt run = %v, want it named", err)
	}
}
