package hub

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMemoryStore(t *testing.T) {
	testStore(t, func(*testing.T) Store { return NewMemory() }, memoryBytes)
}

// memoryBytes are the memory store's documents, ids and bodies.
func memoryBytes(t *testing.T, s Store) []byte {
	m := s.(*Memory).d.(*memDocs)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []byte
	for _, docs := range m.docs {
		for id, body := range docs {
			out = append(append(out, id...), body...)
		}
	}
	return out
}

func newBolt(t *testing.T, path string) *Bolt {
	t.Helper()
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newBolt(t, filepath.Join(t.TempDir(), "hub", "hub.db")) }, boltBytes)
}

// boltBytes is the bbolt file as it is on disk: every page, free ones
// too, so text once written in clear and since overwritten would show.
func boltBytes(t *testing.T, s Store) []byte {
	t.Helper()
	b, err := os.ReadFile(s.(*Bolt).db.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBoltKeepsRequestsGrantsDemandsAndTheVersionAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	h := New(b, Options{Now: func() time.Time { return t0 }})
	ds := Dataset{Name: "health/visits", Sharing: Unconditional, Owner: "health"}
	o, err := h.Submit(ctx, testRequest("").Submission, ds, alice)
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.FileDemand(ctx, DemandInput{Owner: "civil", Description: "benefit rolls", Purpose: "fraud"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	version, _ := b.GrantsVersion(ctx)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = newBolt(t, path)
	r, err := b.Request(ctx, o.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o.Request, r); diff != "" {
		t.Errorf("request after reopening (-before +after):\n%s", diff)
	}
	g, err := b.Grant(ctx, o.Grant.ID)
	if err != nil || !g.Effective(t0.Add(time.Hour)) {
		t.Errorf("grant after reopening: %+v, %v", g, err)
	}
	if got, err := b.Demand(ctx, d.Demand.ID); err != nil || got.State != Open {
		t.Errorf("demand after reopening: %+v, %v", got, err)
	}
	if after, _ := b.GrantsVersion(ctx); after != version {
		t.Errorf("grants version %q after reopening, want %q", after, version)
	}
}

func TestAReadOnlyBoltReadsWhatAGatewayWroteAndWaitsForItsLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g := testGrant(Active, t0.AddDate(1, 0, 0))
	if err := b.CreateRequest(ctx, testRequest(Approved), g); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBoltReadOnly(path, 50*time.Millisecond); err == nil {
		t.Fatal("opened while the gateway holds the file")
	}
	b.Close()
	ro, err := OpenBoltReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.Grant(ctx, g.ID); err != nil || got.ID != g.ID {
		t.Errorf("read %+v, %v", got, err)
	}
	if _, err := OpenBoltReadOnly(filepath.Join(t.TempDir(), "none.db"), time.Second); err == nil {
		t.Error("opened a file that does not exist")
	}
}
