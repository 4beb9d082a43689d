package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func testHasher(t testing.TB, key string) *Hasher {
	t.Helper()
	h, err := NewHasher([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const (
	keyA = "0123456789abcdef0123456789abcdef"
	keyB = "fedcba9876543210fedcba9876543210"
)

func TestNewHasherRefusesShortKeys(t *testing.T) {
	if _, err := NewHasher(bytes.Repeat([]byte{'k'}, 31)); err == nil {
		t.Error("NewHasher accepted a 31-byte key")
	}
	if _, err := NewHasher(nil); err == nil {
		t.Error("NewHasher accepted no key")
	}
}

func TestHasherSumIsKeyedHMACSHA256(t *testing.T) {
	h := testHasher(t, keyA)
	const id = "110101199003074518"
	mac := hmac.New(sha256.New, []byte(keyA))
	mac.Write([]byte(id))
	want := "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))
	if got := h.Sum(id); got != want {
		t.Errorf("Sum = %s, want %s", got, want)
	}
	if got := h.Sum(id); got != want {
		t.Errorf("second Sum = %s, not deterministic", got)
	}
	if other := testHasher(t, keyB).Sum(id); other == want {
		t.Error("two keys give the same hash")
	}
	if h.Sum(id+"9") == want || h.Sum("") == want {
		t.Error("different values give the same hash")
	}
}

func TestHasherSumNeverContainsTheValue(t *testing.T) {
	h := testHasher(t, keyA)
	for _, v := range []string{"110101199003074518", "张三", "13800138000", "北京市朝阳区建国路88号", strings.Repeat("x", 1000)} {
		if got := h.Sum(v); strings.Contains(got, v) {
			t.Errorf("Sum(%q) = %s contains the value", v, got)
		}
	}
}

func TestHasherSumIsSafeForConcurrentUse(t *testing.T) {
	h := testHasher(t, keyA)
	want := h.Sum("张三")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got := h.Sum("张三"); got != want {
					t.Errorf("concurrent Sum = %s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestHasherValuesHashesEveryValueAndKeepsKeys(t *testing.T) {
	h := testHasher(t, keyA)
	q := url.Values{"district": {"朝阳区", "海淀区"}, "id": {"110101199003074518"}, "empty": {""}}
	got := h.Values(q)
	if len(got) != len(q) {
		t.Fatalf("Values kept %d keys, want %d", len(got), len(q))
	}
	for k, vs := range q {
		if len(got[k]) != len(vs) {
			t.Fatalf("%s: %d values, want %d", k, len(got[k]), len(vs))
		}
		for i, v := range vs {
			if got[k][i] != h.Sum(v) {
				t.Errorf("%s[%d] = %s, want Sum(%q)", k, i, got[k][i], v)
			}
		}
	}
	if q.Get("district") != "朝阳区" {
		t.Error("Values changed its argument")
	}
	if h.Values(nil) != nil || h.Values(url.Values{}) != nil {
		t.Error("Values of no parameters is not nil")
	}
}

func BenchmarkHasherSum(b *testing.B) {
	h := testHasher(b, keyA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Sum("110101199003074518")
		}
	})
}

// A person's short hash is the same in every dataset (one lookup finds
// all their releases), stable, 22 characters of base64url, and never
// equal to a record's hash of the same value, nor to one under another
// key; a record's hash depends on its dataset, and the length-prefixed
// parts cannot be shifted into one another.
func TestShortHashesSeparateWhatTheyName(t *testing.T) {
	h, err := NewHasher(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewHasher(bytes.Repeat([]byte("j"), 32))
	u := h.Unit("110101199001011234")
	if len(u) != 22 || strings.ContainsAny(u, "+/=") || u != h.Unit("110101199001011234") {
		t.Fatalf("Unit = %q", u)
	}
	distinct := map[string]string{
		"unit":             u,
		"unit, other key":  other.Unit("110101199001011234"),
		"record":           h.Record("", "110101199001011234"),
		"record, dataset":  h.Record("health/visits", "110101199001011234"),
		"record, shifted":  h.Record("health/visits1", "10101199001011234"),
		"another person":   h.Unit("110101199001011235"),
		"record, other ds": h.Record("civil/assistance", "110101199001011234"),
	}
	seen := map[string]string{}
	for name, v := range distinct {
		if prev, ok := seen[v]; ok {
			t.Errorf("%s and %s hash alike: %s", name, prev, v)
		}
		seen[v] = name
	}
}

// Unit and Record are HMAC-SHA256 over the length-prefixed parts,
// truncated to 128 bits, whatever the parts' lengths (the message is
// assembled in a fixed buffer and written in pieces past it).
func TestShortHashesAreTruncatedHMACOverLengthPrefixedParts(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	h, _ := NewHasher(key)
	want := func(domain, scope, value string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte{byte(len(domain))})
		m.Write([]byte(domain))
		for _, p := range []string{scope, value} {
			m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
			m.Write([]byte(p))
		}
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
	}
	for _, n := range []int{0, 1, 18, 200, 240, 247, 248, 255, 256, 257, 600} {
		v := strings.Repeat("x", n)
		if got := h.Unit(v); got != want("unit", "", v) {
			t.Errorf("Unit of %d bytes = %s, want %s", n, got, want("unit", "", v))
		}
		if got := h.Record(v, "V1"); got != want("record", v, "V1") {
			t.Errorf("Record in a dataset of %d bytes = %s, want %s", n, got, want("record", v, "V1"))
		}
	}
}
