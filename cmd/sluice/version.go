package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sluicegw/sluice/internal/version"
)

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", "Print the build: module version, commit, its time, whether the tree was modified, and the Go version.")
	c.about = `The same line is the "version" of GET /healthz. A binary built by go build in a git checkout
records its commit; go run and go test record none, and the commit, its time and modified read
"unknown". sluice --version is sluice version.`
	c.examples = []string{
		"sluice version",
		"sluice --version",
	}
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if err := c.noArgs(rest); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, "sluice", version.Version())
	return err
}
