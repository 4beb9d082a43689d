package policy

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// Data reads the data document a set's policies see under data: the JSON
// and YAML files of the directory the set was loaded from, merged as Load
// merges them. It fails for a set from a bundle, and when the directory no
// longer holds exactly the files the set was compiled from, so the data
// never belongs to another revision than the rules.
func (s *Set) Data() (map[string]any, error) {
	if s == nil || s.dir == "" {
		return nil, errors.New("policy data: the set was not loaded from a directory")
	}
	snap, err := scan(s.dir)
	if err != nil {
		return nil, err
	}
	if snap.digest != s.digest {
		return nil, fmt.Errorf("policy data %s: the directory changed since its policies were loaded", s.dir)
	}
	loaded, err := loader.NewFileLoader().
		WithFS(snap.files).
		WithRegoVersion(ast.RegoV1).
		Filtered([]string{"."}, func(path string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && isTestFile(path)
		})
	if err != nil {
		return nil, fmt.Errorf("policy data %s: %w", s.dir, err)
	}
	return loaded.Documents, nil
}
