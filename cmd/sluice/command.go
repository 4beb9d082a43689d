package main

import (
	"context"
	"flag"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/sluicegw/sluice/internal/suggest"
)

// command is one command of the program as its parser and its help see
// it. Every command builds one, so that --help reads the same everywhere
// and flags may come before, between or after the arguments.
type command struct {
	// name is the command as typed after "sluice": "audit search".
	name string
	// summary says in one line what the command does.
	summary string
	// usage follows the name in the usage line: the required flags and
	// the positional arguments, e.g. "[flags] [METHOD] PATH".
	usage string
	// about is said after the usage line, e.g. the exit statuses.
	about string
	// examples are whole command lines.
	examples []string
	flags    *flag.FlagSet
}

func newCommand(name, summary string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors come back from parse and help goes to stdout: the flag
	// package itself prints nothing.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, summary: summary, usage: "[flags]", flags: fs}
}

// parse sets the command's flags from args and returns the positional
// arguments. Flags may follow arguments (`policy test DIR -v`); after
// "--" everything is an argument. With -h or --help it prints the help to
// stdout and returns flag.ErrHelp, which run turns into success.
func (c *command) parse(args []string, stdout io.Writer) ([]string, error) {
	var flags, positional []string
	unknown := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := c.flags.Lookup(name)
		switch {
		case name == "h" || name == "help":
			c.help(stdout)
			return nil, flag.ErrHelp
		case f == nil:
			if unknown == "" {
				unknown = name
			}
		case !hasValue && !isBoolFlag(f) && i+1 < len(args):
			// The next word is the value, whatever it looks like:
			// --limit -1 is a value, not a flag.
			flags = append(flags, a, args[i+1])
			i++
		default:
			flags = append(flags, a)
		}
	}
	if unknown != "" {
		var names []string
		c.flags.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg := "unknown flag " + dashed(unknown)
		if near, ok := suggest.Nearest(unknown, names); ok {
			msg += "; did you mean " + dashed(near) + "?"
		}
		return nil, usagef(c.name, "%s", msg)
	}
	if err := c.flags.Parse(flags); err != nil {
		return nil, usagef(c.name, "%s", flagInMessage.ReplaceAllString(err.Error(), "$1--$2"))
	}
	return positional, nil
}

// flagInMessage finds the flags the flag package names with one dash
// ("invalid value "x" for flag -limit"), to name them as help does.
var flagInMessage = regexp.MustCompile(`(^|\s)-([A-Za-z][\w-]+)`)

// dashed is a flag's name as help shows it: -v, --dir.
func dashed(name string) string {
	if utf8.RuneCountInString(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// noArgs refuses positional arguments, for commands that take none; a
// word that is nearly one of subcommands is suggested.
func (c *command) noArgs(args []string, subcommands ...string) error {
	if len(args) == 0 {
		return nil
	}
	return usagef(c.name, "unexpected argument %q%s", args[0], didYouMean(args[0], subcommands))
}

// group is a command made of subcommands: sluice audit, sluice policy.
type group struct {
	name, summary string
	subcommands   []subcommand
	examples      []string
}

// subcommand is one of a group's commands.
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// run runs the subcommand args name, or prints the group's help.
func (g *group) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var names []string
	for _, s := range g.subcommands {
		names = append(names, s.name)
	}
	noun := "subcommand"
	if g.name == "" {
		noun = "command"
	}
	if len(args) == 0 {
		return usagef(g.name, "want a %s: %s", noun, strings.Join(names, ", "))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		g.help(stdout)
		return nil
	}
	for _, s := range g.subcommands {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usagef(g.name, "unknown %s %q%s", noun, args[0], didYouMean(args[0], names))
}
