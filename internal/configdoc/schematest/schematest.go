// Package schematest checks YAML documents against a JSON Schema, such
// as the configuration's (docs/config.schema.json), the way an editor
// does: the YAML is read into the values its JSON form would hold, then
// validated. It is for tests; the gateway itself validates its
// configuration in Go.
package schematest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// Schema is a compiled JSON Schema.
type Schema struct{ s *jsonschema.Schema }

// Load compiles the schema in the file at path, or the part of it a
// fragment names (path#/$defs/Duration), failing the test if it does
// not compile.
func Load(t testing.TB, path string) *Schema {
	t.Helper()
	file, fragment, _ := bytes.Cut([]byte(path), []byte("#"))
	abs, err := filepath.Abs(string(file))
	if err != nil {
		t.Fatal(err)
	}
	loc := abs
	if len(fragment) > 0 {
		loc += "#" + string(fragment)
	}
	s, err := jsonschema.NewCompiler().Compile(loc)
	if err != nil {
		t.Fatalf("compile the schema %s: %v", path, err)
	}
	return &Schema{s: s}
}

// Validate checks a YAML document (its first, if it holds several).
func (s *Schema) Validate(doc []byte) error {
	v, err := FromYAML(doc)
	if err != nil {
		return err
	}
	return s.s.Validate(v)
}

// FromYAML reads a YAML document into the values encoding/json would read
// from its JSON form: maps, slices, numbers, strings, booleans and nil.
func FromYAML(doc []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		return nil, err
	}
	if n.Kind == 0 {
		return nil, nil // an empty document
	}
	return value(&n)
}

func value(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return value(n.Content[0])
	case yaml.AliasNode:
		return value(n.Alias)
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := value(c)
			if err != nil {
				return nil, err
			}
			list[i] = v
		}
		return list, nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return nil, fmt.Errorf("line %d: only scalar keys are supported", k.Line)
			}
			val, err := value(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	if _, ok := v.(time.Time); ok {
		return n.Value, nil // JSON has no timestamps: a string
	}
	return v, nil
}
