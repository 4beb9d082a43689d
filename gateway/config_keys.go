package gateway

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/suggest"
	"go.yaml.in/yaml/v3"
)

// unknownKeyError rewrites the "field X not found" errors a strict decode
// of the configuration doc gave (err) to say where the key is, as a path
// from the top of the file, and which known key it is nearest:
//
//	line 41: field privacy_unti not found at sources.health.datasets.visits.privacy_unti; did you mean privacy_unit?
//
// Any other error is returned as it is.
func unknownKeyError(doc []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return err
	}
	unknown := map[string]unknownKey{} // by line and key, as the decoder names them
	walkKeys(&root, reflect.TypeFor[Config](), "", func(k unknownKey) {
		unknown[fmt.Sprintf("%d %s", k.line, k.key)] = k
	})
	out := &yaml.TypeError{Errors: make([]string, len(te.Errors))}
	for i, e := range te.Errors {
		out.Errors[i] = e
		m := fieldNotFound.FindStringSubmatch(e)
		if m == nil {
			continue
		}
		if k, ok := unknown[m[1]+" "+m[2]]; ok {
			out.Errors[i] = fmt.Sprintf("line %d: field %s not found at %s", k.line, k.key, k.path)
			if k.nearest != "" {
				out.Errors[i] += "; did you mean " + k.nearest + "?"
			}
		}
	}
	return out
}

// fieldNotFound is how the decoder reports an unknown key.
var fieldNotFound = regexp.MustCompile(`^line (\d+): field (.+) not found in type `)

// unknownKey is a key the configuration does not have.
type unknownKey struct {
	path    string // sources.health.datasets.visits.privacy_unti
	key     string
	line    int
	nearest string // the known key nearest key, "" when none is near
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walkKeys reports every key of n that the type t it decodes into has no
// field for. path is n's; an element of a list is named by its name key
// when it has one (sources.health), else by its index (auth.keys[0]).
func walkKeys(n *yaml.Node, t reflect.Type, path string, report func(unknownKey)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // decodes itself: a duration, a size
	}
	switch {
	case n.Kind == yaml.DocumentNode:
		for _, c := range n.Content {
			walkKeys(c, t, path, report)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		known := make([]string, 0, len(fields))
		for name := range fields {
			known = append(known, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue // a merge: its keys are checked where they are written
			}
			ft, ok := fields[k.Value]
			if !ok {
				report(unknownKey{path: joinKey(path, k.Value), key: k.Value, line: k.Line, nearest: nearestKey(k.Value, known)})
				continue
			}
			walkKeys(v, ft, joinKey(path, k.Value), report)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkKeys(n.Content[i+1], t.Elem(), joinKey(path, n.Content[i].Value), report)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			walkKeys(c, t.Elem(), path+elementName(c, i), report)
		}
	}
}

// yamlFields are the keys a struct decodes, as yaml.v3 names them, and
// the types they decode into.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
			continue
		case strings.Contains(opts, "inline"):
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// elementName names a list element in a path: .NAME after its name key,
// else [i].
func elementName(n *yaml.Node, i int) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" {
				return "." + v.Value
			}
		}
	}
	return "[" + strconv.Itoa(i) + "]"
}

// nearestKey is the known key nearest key; "" when none is near.
func nearestKey(key string, known []string) string {
	k, _ := suggest.Nearest(key, known)
	return k
}
