package configdoc

import (
	"fmt"
	"strings"
)

// Page is what the Markdown reference says besides the keys.
type Page struct {
	// Title heads the page.
	Title string
	// Notice is the first line, an HTML comment saying the page is
	// generated.
	Notice string
	// Intro (Markdown) follows the root type's doc comment.
	Intro string
	// Example is a short complete configuration, shown after the intro,
	// and ExamplePath its path relative to the page.
	Example     []byte
	ExamplePath string
}

// Markdown writes the reference: the root type's doc comment, the intro,
// the example, the types that decode themselves, then a section for each
// top-level key with a heading for every key below it, by path.
func (r *Reference) Markdown(p Page) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("<!-- %s -->\n\n# %s\n\n", p.Notice, p.Title)
	if r.root.doc != "" {
		w("%s\n\n", markdown(typeDoc(r.root.doc, r.root.name, "", code)))
	}
	w("%s\n", strings.TrimSpace(p.Intro))
	if len(p.Example) > 0 {
		w("\n## Example\n\nA small complete configuration ([%s](%s)):\n\n```yaml\n%s```\n", p.ExamplePath, p.ExamplePath, p.Example)
	}
	if len(r.units) > 0 {
		w("\n## Types\n\nBesides strings, numbers, booleans, lists and maps, values are of these types:\n")
		for _, u := range r.units {
			w("\n### %s\n\n%s\n", unitName(u), markdown(typeDoc(u.doc, u.name, unitName(u), code)))
		}
	}
	w("\n## Keys\n\n")
	for _, d := range r.root.fields {
		w("- [`%s`](#%s)\n", d.key, anchor(d.key))
	}
	for _, f := range r.fields {
		heading := "###"
		if !strings.ContainsAny(f.Path, ".[") {
			heading = "##"
		}
		w("\n%s `%s`\n\n%s\n", heading, f.Path, r.summary(f))
		if f.Doc != "" {
			w("\n%s\n", markdown(keysFor(f.Doc, r.keysOf(f), code)))
		}
		// The doc of the key's type, unless it says what the key's did.
		if t := elemType(f.def.typ); t.kind == kStruct && t.st.doc != "" {
			td := markdown(typeDoc(t.st.doc, t.st.name, elemKey(f), code))
			if td != markdown(keysFor(f.Doc, r.keysOf(f), code)) {
				w("\n%s\n", td)
			}
		}
	}
	return []byte(b.String())
}

// summary is the line under a key's heading: its type, whether it is
// required, its values and default.
func (r *Reference) summary(f Field) string {
	parts := []string{typeName(f.def.typ, false)}
	switch {
	case f.Required:
		parts = append(parts, "required")
	case f.RequiredWhen != "":
		parts = append(parts, "required "+f.RequiredWhen)
	}
	if len(f.Enum) > 0 {
		vals := make([]string, len(f.Enum))
		for i, v := range f.Enum {
			vals[i] = code(v)
		}
		what := "one of"
		switch f.def.typ.kind {
		case kList:
			what = "each one of"
		case kMap:
			what = "keys one of"
		}
		parts = append(parts, what+" "+strings.Join(vals, ", "))
	}
	if f.Default != "" {
		d := f.Default
		if !strings.Contains(d, " ") {
			d = code(d)
		}
		parts = append(parts, "default "+d)
	}
	return strings.Join(parts, " · ")
}

// keysOf is the Go names of the fields beside f, by their keys.
func (r *Reference) keysOf(f Field) map[string]string {
	for _, st := range r.structs {
		for _, d := range st.fields {
			if d == f.def {
				return st.keys
			}
		}
	}
	return nil
}

// typeName names a type for a reader: "string", "list of objects".
func typeName(t *typeRef, plural bool) string {
	s := func(one, many string) string {
		if plural {
			return many
		}
		return one
	}
	switch t.kind {
	case kString:
		return s("string", "strings")
	case kBool:
		return s("boolean", "booleans")
	case kInt:
		return s("integer", "integers")
	case kNumber:
		return s("number", "numbers")
	case kUnit:
		n := unitName(t.unit)
		return fmt.Sprintf("[%s](#%s)", s(n, n+"s"), n)
	case kStruct:
		return s("object", "objects")
	case kList:
		return s("list", "lists") + " of " + typeName(t.elem, true)
	case kMap:
		return s("map", "maps") + " of " + typeName(t.elem, true)
	}
	return ""
}

func unitName(u *unitType) string { return strings.ToLower(u.name) }

// elemType is the type of a key's value, or of its elements for a list
// or map (of lists ...).
func elemType(t *typeRef) *typeRef {
	for t.kind == kList || t.kind == kMap {
		t = t.elem
	}
	return t
}

// elemKey names, for a type's doc, what the type is at f: f's key, with
// [] for a list's elements or .* for a map's values (fields.*).
func elemKey(f Field) string {
	key := f.def.key
	for t := f.def.typ; ; t = t.elem {
		switch t.kind {
		case kList:
			key += "[]"
			continue
		case kMap:
			key += ".*"
			continue
		}
		return key
	}
}

// anchor is GitHub's anchor of a heading of code: its letters, digits,
// - and _, lower-cased.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		if r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}
