package state

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestBoltKeepsRevocationsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	alice := RevokedSubject{Issuer: "https://idp.example", Subject: "alice"}
	rev := SubjectRevocation{IssuedBefore: time.Now().Add(-time.Minute), Expires: time.Now().Add(time.Hour)}
	if err := b.Revoke(ctx, "jti-1", rev.Expires); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeSubject(ctx, alice, rev); err != nil {
		t.Fatal(err)
	}
	before, _ := b.Revoked(ctx, "")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	after, err := b.Revoked(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("after reopening (-before +after):\n%s", diff)
	}
}

// TestRedisRoundsRevocationTimesUp: Redis keeps milliseconds; a cutoff or
// expiry between two is kept as the later, so that no token the
// revocation covers gets through.
func TestRedisRoundsRevocationTimesUp(t *testing.T) {
	base := time.UnixMilli(1_795_000_000_000)
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{base, base.UnixMilli()},
		{base.Add(time.Nanosecond), base.UnixMilli() + 1},
		{base.Add(999 * time.Microsecond), base.UnixMilli() + 1},
	} {
		if got := ceilMilli(tc.t); got != tc.want {
			t.Errorf("ceilMilli(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}
