package jsonscan

import (
	"fmt"
	"testing"
)

func TestSkipValueEndsWhereTheValueEnds(t *testing.T) {
	for _, tc := range []struct {
		in  string
		end int
		ok  bool
	}{
		{`"a\"b",`, 6, true},
		{`"a\\",`, 5, true},
		{`{"x":"}"},`, 9, true},
		{`[1,[2,{"y":"]"}]],`, 17, true},
		{`12.5e3}`, 6, true},
		{`true`, 4, true},
		{`"open`, 0, false},
		{`{"x":1`, 0, false},
		{``, 0, false},
	} {
		end, ok := SkipValue([]byte(tc.in), 0)
		if end != tc.end || ok != tc.ok {
			t.Errorf("SkipValue(%q) = %d, %v; want %d, %v", tc.in, end, ok, tc.end, tc.ok)
		}
	}
}

func TestMembersReadsEachMemberInPlace(t *testing.T) {
	var got []string
	ok := Members([]byte(` {"a" : 1, "b\u0063":{"x":[1,"}"]} ,"d":"e\"f"} `), func(name string, raw []byte) {
		got = append(got, fmt.Sprintf("%s=%s", name, raw))
	})
	if want := `[a=1 bc={"x":[1,"}"]} d="e\"f"]`; !ok || fmt.Sprint(got) != want {
		t.Errorf("Members: %v %v, want %s", ok, got, want)
	}
	for _, bad := range []string{`[]`, `{"a":1,}`, `{"a" 1}`, `{"a":1} x`, `{`} {
		if Members([]byte(bad), func(string, []byte) {}) {
			t.Errorf("Members(%q) reported an object", bad)
		}
	}
}
