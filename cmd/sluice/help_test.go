package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// helpCommandLines are the command lines that ask each command, group
// and subcommand for its help, derived from the dispatch tables.
func helpCommandLines() [][]string {
	lines := [][]string{{"--help"}, {"-h"}, {"help"}, {"token", "revoke", "--help"}}
	for _, c := range commands.subcommands {
		lines = append(lines, []string{c.name, "--help"}, []string{c.name, "-h"})
	}
	for _, g := range []*group{auditCommands, policyCommands, hubCommands} {
		lines = append(lines, []string{g.name, "help"})
		for _, s := range g.subcommands {
			lines = append(lines, []string{g.name, s.name, "--help"}, []string{"help", g.name, s.name})
		}
	}
	return lines
}

// singleDashFlag is a flag of more than one letter written as Go's flag
// package prints it.
var singleDashFlag = regexp.MustCompile(`(^|\s)-[a-z][a-z-]+\b`)

func TestEveryCommandsHelpGoesToStdoutWithUsageFlagsAndExamples(t *testing.T) {
	for _, args := range helpCommandLines() {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := runCmd(t, args...)
			if err != nil || exitCode(err) != 0 {
				t.Fatalf("exit %d (%v); stderr:\n%s", exitCode(err), err, errOut)
			}
			if errOut != "" {
				t.Errorf("help wrote to stderr:\n%s", errOut)
			}
			lines := strings.Split(out, "\n")
			if lines[0] == "" || strings.HasPrefix(lines[0], "usage") {
				t.Errorf("help does not begin with what the command does:\n%s", out)
			}
			for _, want := range []string{"usage: sluice", "examples:\n  sluice "} {
				if !strings.Contains(out, want) {
					t.Errorf("help does not say %q:\n%s", want, out)
				}
			}
			if m := singleDashFlag.FindString(out); m != "" {
				t.Errorf("help names a flag with one dash, %q:\n%s", m, out)
			}
		})
	}
}

func TestSubcommandHelpListsEveryFlagWithTwoDashesAndItsDefault(t *testing.T) {
	out, _, err := runCmd(t, "audit", "search", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"usage: sluice audit search [flags]\n",
		"\n  --dir DIR ",
		"\n  --limit N ",
		"\n  --json ",
		"\n  -h, --help ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not say %q:\n%s", want, out)
		}
	}
	if words := strings.Join(strings.Fields(out), " "); !strings.Contains(words, "holding audit/ (default .sluice-demo)") {
		t.Errorf("help does not give --dir's default:\n%s", out)
	}
	out, _, err = runCmd(t, "policy", "test", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"usage: sluice policy test [flags] [DIR]\n", "\n  -v ", "\n  --threshold N "} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not say %q:\n%s", want, out)
		}
	}
}

func TestHelpIsShownWhereverTheFlagIs(t *testing.T) {
	want, _, _ := runCmd(t, "policy", "lint", "--help")
	for _, args := range [][]string{
		{"policy", "lint", "policies", "--help"},
		{"policy", "lint", "--json", "-h", "policies"},
		{"help", "policy", "lint"},
	} {
		got, _, err := runCmd(t, args...)
		if err != nil || got != want {
			t.Errorf("%q: %v, output:\n%s\nwant the help of policy lint", args, err, got)
		}
	}
}

// TestUsageNamesEveryCommand keeps the top-level help, written by hand,
// true to the dispatch tables.
func TestUsageNamesEveryCommand(t *testing.T) {
	var named []string
	for _, line := range strings.Split(usage, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && len(f) > 0 {
			named = append(named, f[0])
			if len(f) > 1 {
				named = append(named, f[0]+" "+f[1])
			}
		}
	}
	want := []string{"token revoke", "help"}
	for _, c := range commands.subcommands {
		want = append(want, c.name)
	}
	for _, g := range []*group{auditCommands, policyCommands, hubCommands} {
		for _, s := range g.subcommands {
			want = append(want, g.name+" "+s.name)
		}
	}
	for _, w := range want {
		if !slices.Contains(named, w) {
			t.Errorf("the usage text does not list %q:\n%s", w, usage)
		}
	}
}
