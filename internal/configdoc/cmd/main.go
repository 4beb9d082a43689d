// Command cmd writes the gateway's configuration reference,
// docs/config.md, and its JSON Schema, docs/config.schema.json, from the
// doc comments of the gateway's configuration types. go generate runs it
// in the gateway package's directory (see gateway/config_doc.go).
package main

import (
	"fmt"
	"os"

	"github.com/sluicegw/sluice/internal/configdoc"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	files, err := configdoc.Generate(".")
	if err != nil {
		return err
	}
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
