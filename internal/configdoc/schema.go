package configdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Schema writes a JSON Schema (draft 2020-12) of the configuration:
// every object closed (additionalProperties: false) as the decoder is
// strict, each struct type once under $defs, descriptions from the doc
// comments, required keys, defaults, enums and patterns where the doc
// comments give them. title names the schema.
func (r *Reference) Schema(title string) ([]byte, error) {
	defs := obj{}
	for _, u := range r.units {
		s, err := withDescription(u.schema, text(typeDoc(u.doc, u.name, unitName(u), plain)))
		if err != nil {
			return nil, fmt.Errorf("configdoc: //config:schema of %s: %w", u.name, err)
		}
		defs = append(defs, kv{u.name, s})
	}
	for _, st := range r.structs {
		if st != r.root {
			defs = append(defs, kv{st.name, r.object(st, typeDoc(st.doc, st.name, "", plain))})
		}
	}
	doc := obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", title},
	}
	doc = append(doc, r.object(r.root, typeDoc(r.root.doc, r.root.name, "", plain))...)
	doc = append(doc, kv{"$defs", defs})
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// withDescription is a schema object, as written, with a description
// first.
func withDescription(schema, description string) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(schema)); err != nil {
		return nil, err
	}
	s := b.String()
	if !strings.HasPrefix(s, "{") {
		return nil, fmt.Errorf("want a JSON object, got %s", s)
	}
	d, err := marshal(description)
	if err != nil {
		return nil, err
	}
	sep := ","
	if s == "{}" {
		sep = ""
	}
	return json.RawMessage(`{"description":` + string(d) + sep + s[1:]), nil
}

// object is the schema of a struct type.
func (r *Reference) object(st *structType, description string) obj {
	o := obj{}
	if description != "" {
		o = append(o, kv{"description", text(description)})
	}
	o = append(o, kv{"type", "object"})
	props := obj{}
	var req []string
	for _, d := range st.fields {
		props = append(props, kv{d.key, r.property(d, st)})
		if d.required {
			req = append(req, d.key)
		}
	}
	o = append(o, kv{"properties", props})
	if len(req) > 0 {
		o = append(o, kv{"required", req})
	}
	return append(o, kv{"additionalProperties", false})
}

// property is the schema of a field.
func (r *Reference) property(d *fieldDef, st *structType) obj {
	p := r.typeSchema(d.typ, d)
	if d.doc != "" {
		p = append(obj{{"description", text(keysFor(d.doc, st.keys, plain))}}, p...)
	}
	if v, ok := r.defaultValue(d); ok {
		p = append(p, kv{"default", v})
	}
	return p
}

// typeSchema is the schema of a type; d's enum and pattern constrain its
// scalar (see scalar).
func (r *Reference) typeSchema(t *typeRef, d *fieldDef) obj {
	constrain := func(o obj) obj {
		if d == nil {
			return o
		}
		if len(d.enum) > 0 {
			o = append(o, kv{"enum", d.enum})
		}
		if d.pattern != "" {
			o = append(o, kv{"pattern", d.pattern})
		}
		return o
	}
	switch t.kind {
	case kString:
		return constrain(obj{{"type", "string"}})
	case kBool:
		return obj{{"type", "boolean"}}
	case kInt:
		return obj{{"type", "integer"}}
	case kNumber:
		return obj{{"type", "number"}}
	case kUnit:
		return obj{{"$ref", "#/$defs/" + t.unit.name}}
	case kStruct:
		return obj{{"$ref", "#/$defs/" + t.st.name}}
	case kList:
		return obj{{"type", "array"}, {"items", r.typeSchema(t.elem, d)}}
	case kMap:
		o := obj{{"type", "object"}}
		if keys := constrain(obj{}); len(keys) > 0 {
			o = append(o, kv{"propertyNames", keys})
		}
		return append(o, kv{"additionalProperties", r.typeSchema(t.elem, nil)})
	}
	return nil
}

// defaultValue is the default the doc comment states, when it is a value
// of the field's type; a default in words ("the system temp dir") is
// only for the reader.
func (r *Reference) defaultValue(d *fieldDef) (any, bool) {
	s := d.dflt
	if s == "" {
		return nil, false
	}
	switch d.typ.kind {
	case kBool:
		v, err := strconv.ParseBool(s)
		return v, err == nil
	case kInt:
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	case kNumber:
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	case kString:
		if u, err := strconv.Unquote(s); err == nil {
			s = u
		} else if len(d.enum) == 0 {
			return nil, false // an unquoted word may be a placeholder (PREFIX:audit:stream)
		}
		if len(d.enum) > 0 && !slices.Contains(d.enum, s) {
			return nil, false
		}
		return s, true
	case kUnit:
		for _, re := range patterns(d.typ.unit.schema) {
			if re.MatchString(s) {
				return s, true
			}
		}
	}
	return nil, false
}

// patterns are the string patterns of a type's schema, wherever they are
// in it.
func patterns(schema string) []*regexp.Regexp {
	var v any
	if json.Unmarshal([]byte(schema), &v) != nil {
		return nil
	}
	var out []*regexp.Regexp
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if p, ok := v["pattern"].(string); ok {
				if re, err := regexp.Compile(p); err == nil {
					out = append(out, re)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// obj is a JSON object that keeps its keys in order.
type obj []kv

type kv struct {
	key   string
	value any
}

// MarshalJSON writes the members in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without escaping <, > and &, which a schema's
// patterns and descriptions hold.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
