package hub

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// testSealer seals the fixtures' text.
var testSealer = mustSealer(bytes.Repeat([]byte{7}, SealerKeySize))

func mustSealer(key []byte) *Sealer {
	s, err := NewSealer(key)
	if err != nil {
		panic(err)
	}
	return s
}

func TestSealedTextOpensWithItsKeyObjectAndFieldOnly(t *testing.T) {
	const text = "住址错误：不是我的记录"
	sealed := testSealer.Seal("obj_a", "claim", text)
	if got, err := testSealer.Open("obj_a", "claim", sealed); err != nil || got != text {
		t.Fatalf("opened %q, %v; want %q", got, err, text)
	}
	if bytes.Contains(sealed, []byte(text)) {
		t.Error("the sealed text holds the text")
	}
	flipped := func(i int) Sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	for name, tc := range map[string]struct {
		s             *Sealer
		object, field string
		sealed        Sealed
	}{
		"another object":       {testSealer, "obj_b", "claim", sealed},
		"another field":        {testSealer, "obj_a", "history.1.reason", sealed},
		"another key":          {mustSealer(bytes.Repeat([]byte{8}, SealerKeySize)), "obj_a", "claim", sealed},
		"a changed nonce":      {testSealer, "obj_a", "claim", flipped(0)},
		"a changed ciphertext": {testSealer, "obj_a", "claim", flipped(len(sealed) / 2)},
		"a changed tag":        {testSealer, "obj_a", "claim", flipped(len(sealed) - 1)},
		"a cut tag":            {testSealer, "obj_a", "claim", sealed[:len(sealed)-1]},
		"bytes added":          {testSealer, "obj_a", "claim", append(bytes.Clone(sealed), 0)},
		"shorter than a nonce": {testSealer, "obj_a", "claim", sealed[:5]},
		"nothing":              {testSealer, "obj_a", "claim", nil},
	} {
		got, err := tc.s.Open(tc.object, tc.field, tc.sealed)
		if !errors.Is(err, errUnopenable) || got != "" {
			t.Errorf("%s: opened %q, %v; want it refused", name, got, err)
		}
	}
}

func TestSealingTheSameTextTwiceGivesTwoCiphertexts(t *testing.T) {
	a, b := testSealer.Seal("obj_a", "claim", "same"), testSealer.Seal("obj_a", "claim", "same")
	if bytes.Equal(a, b) || bytes.Equal(a[:12], b[:12]) {
		t.Error("two seals share a nonce")
	}
	if len(a) != 12+len("same")+16 {
		t.Errorf("sealed %d bytes, want a 12-byte nonce, the text and a 16-byte tag", len(a))
	}
}

func TestASealerKeyIsThirtyTwoBytes(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Errorf("a %d-byte key: %v, want refused naming the size", n, err)
		}
	}
}
