package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// helpWidth is the width help wraps its lines to.
const helpWidth = 100

// help prints the command's help: what it does, its usage line, its
// flags and examples.
func (c *command) help(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nusage: sluice %s %s\n", c.summary, c.name, c.usage)
	if c.about != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.about))
	}
	var rows [][2]string
	c.flags.VisitAll(func(f *flag.Flag) { rows = append(rows, flagRow(f)) })
	rows = append(rows, [2]string{"-h, --help", "print this help"})
	b.WriteString("\nflags:\n")
	writeRows(&b, rows)
	writeExamples(&b, c.examples)
	io.WriteString(w, b.String())
}

// flagRow is a flag's line in help: "--dir DIR" and what it is.
func flagRow(f *flag.Flag) [2]string {
	placeholder, usage := flag.UnquoteUsage(f)
	switch {
	case isBoolFlag(f):
		placeholder = ""
	case strings.Contains(f.Usage, "`"):
		// The usage names its value: "read `FILE`".
	case placeholder == "int" || placeholder == "uint" || placeholder == "float":
		placeholder = "N"
	case placeholder == "duration":
		placeholder = "DURATION"
	default:
		placeholder = strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
	}
	left := dashed(f.Name)
	if placeholder != "" {
		left += " " + placeholder
	}
	if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
		usage += " (default " + d + ")"
	}
	return [2]string{left, usage}
}

// writeRows prints two columns, the second wrapped to helpWidth; a left
// cell too wide for the column puts its text on the next line.
func writeRows(b *strings.Builder, rows [][2]string) {
	const maxLeft = 30
	col := 0
	for _, r := range rows {
		if n := len(r[0]); n <= maxLeft {
			col = max(col, n)
		}
	}
	indent := strings.Repeat(" ", 2+col+3)
	for _, r := range rows {
		b.WriteString("  " + r[0])
		if len(r[0]) > col {
			b.WriteString("\n" + indent)
		} else {
			b.WriteString(strings.Repeat(" ", col-len(r[0])+3))
		}
		for i, line := range wrap(r[1], helpWidth-len(indent)) {
			if i > 0 {
				b.WriteString(indent)
			}
			b.WriteString(line + "\n")
		}
	}
}

func writeExamples(b *strings.Builder, examples []string) {
	b.WriteString("\nexamples:\n")
	for _, e := range examples {
		b.WriteString("  " + e + "\n")
	}
}

// wrap breaks text into lines of at most width runes, between words.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// help prints what the group does, its subcommands and examples.
func (g *group) help(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nusage: sluice %s <subcommand> [flags] [args]\n\nsubcommands:\n", g.summary, g.name)
	var rows [][2]string
	for _, s := range g.subcommands {
		rows = append(rows, [2]string{s.name, s.summary})
	}
	writeRows(&b, rows)
	fmt.Fprintf(&b, "\nRun \"sluice %s <subcommand> --help\" for a subcommand's flags.\n", g.name)
	writeExamples(&b, g.examples)
	io.WriteString(w, b.String())
}
