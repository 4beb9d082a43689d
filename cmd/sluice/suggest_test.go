package main

import (
	"strings"
	"testing"
)

func TestMistypedNamesGetTheNearestSuggested(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audti"}, `unknown command "audti"; did you mean audit?`},
		{[]string{"sevre", "--config", "x.yaml"}, `unknown command "sevre"; did you mean serve?`},
		{[]string{"policy", "rsk"}, `policy: unknown subcommand "rsk"; did you mean risk?`},
		{[]string{"audit", "verfiy"}, `audit: unknown subcommand "verfiy"; did you mean verify?`},
		{[]string{"token", "revok", "--jti", "x"}, `token: unexpected argument "revok"; did you mean revoke?`},
		{[]string{"audit", "search", "--datset", "health/visits"}, "audit search: unknown flag --datset; did you mean --dataset?"},
		{[]string{"policy", "risk", "--dataset", "health/visits", "--rol", "analyst"}, "policy risk: unknown flag --rol; did you mean --role?"},
		{[]string{"policy", "test", "policies", "--coverag"}, "policy test: unknown flag --coverag; did you mean --coverage?"},
	} {
		out, _, err := runCmd(t, tc.args...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v (exit %d), want exit 2 saying %q", tc.args, err, exitCode(err), tc.want)
		}
		if out != "" {
			t.Errorf("%q printed on stdout:\n%s", tc.args, out)
		}
	}
}

func TestNothingIsSuggestedForAWordNearNoName(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"policy", "xy"}, {"audit", "search", "--zz"}} {
		_, _, err := runCmd(t, args...)
		if exitCode(err) != 2 || strings.Contains(err.Error(), "did you mean") {
			t.Errorf("%q: %v (exit %d), want exit 2 suggesting nothing", args, err, exitCode(err))
		}
	}
}
