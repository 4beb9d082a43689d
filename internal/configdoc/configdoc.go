// Package configdoc documents a YAML configuration from the Go types it
// decodes into: it reads the package's source, walks from the root struct
// through the fields' yaml tags, and writes a Markdown reference and a JSON
// Schema (draft 2020-12) of the file, both from the fields' doc comments.
// What the reference says about a key is therefore what its Go field's
// doc comment says, and nothing else.
//
// A doc comment states, in words that read well in Go too:
//
//   - that the key is required, in a sentence that begins with "Required":
//     "Required." and "Required: ..." always, "Required with X." or
//     "Required unless X." under that condition;
//   - its default, as "(default 30s)", "(default 30s; at least 1s)", or
//     after the value, as in "closed (default)";
//   - several fields at once, as in "CertFile and KeyFile are ...": a
//     field without a doc comment of its own takes the nearest preceding
//     one that names it.
//
// Directives, which go doc does not show, give what prose cannot:
//
//	//config:enum a b c        the key's closed set of values (on a list,
//	                           its elements'; on a map, its keys')
//	//config:enum someVar      the same, the keys or elements of the
//	                           package-level map or slice literal someVar
//	//config:pattern someRE    the regexp.MustCompile literal someRE,
//	                           likewise
//	//config:schema {...}      on a type that decodes itself (it has an
//	                           UnmarshalYAML method): its JSON Schema
//
// A Go field name at the start of a doc comment, and a CamelCase one
// anywhere in it, is written as the key it decodes; "(see file.go)" is
// left out. Field types may be strings, booleans, integers, floats, types
// that decode themselves, structs of the package, and pointers, slices and
// string-keyed maps of those; anything else is an error, so that a new
// kind of field is not documented wrong in silence.
//
// Generate applies this to the gateway (gateway.Config, docs/config.md,
// docs/config.schema.json); go generate ./gateway runs it, and the
// gateway's tests fail when the files it would write differ from the
// committed ones.
package configdoc

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Reference is the documentation of a configuration: every key of the
// root struct's type, with the doc comments of the fields they decode.
type Reference struct {
	root    *structType
	structs []*structType // in the order they are first reached
	units   []*unitType   // likewise
	fields  []Field       // every key, depth first, in source order
}

// Field is one key of the configuration, at one place in it.
type Field struct {
	// Path is the key's path from the top of the file, as validation
	// errors name it, with [] for any element of a list and * for any key
	// of a map: sources[].datasets[].fields.*.level.
	Path string
	// Pos is where the Go field is declared (config.go:42).
	Pos string
	// Doc is the field's doc comment, without directives; "" when it has
	// none.
	Doc string
	// Required is true when the doc comment says the key is required,
	// always; RequiredWhen is the condition when it says "Required with
	// X" or "Required unless X".
	Required     bool
	RequiredWhen string
	// Default is the default the doc comment states, as written.
	Default string
	// Enum is the closed set of the key's values (of its elements' for a
	// list, of its keys' for a map) given by a //config:enum directive.
	Enum []string

	def *fieldDef
}

// fieldDef is a field of a struct type, wherever the type is used.
type fieldDef struct {
	key, goName, pos string
	doc              string // the field's doc comment, or the preceding one that names it
	typ              *typeRef
	required         bool
	requiredWhen     string
	dflt             string
	enum             []string
	pattern          string
}

type kind int

const (
	kString kind = iota
	kBool
	kInt
	kNumber
	kUnit
	kStruct
	kList
	kMap
)

// typeRef is the type a key decodes into, pointers left out.
type typeRef struct {
	kind kind
	unit *unitType   // kUnit
	st   *structType // kStruct
	elem *typeRef    // kList, kMap
}

// structType is a struct type of the package.
type structType struct {
	name   string
	doc    string
	fields []*fieldDef
	keys   map[string]string // Go field name → YAML key
}

// unitType is a type of the package that decodes itself from a scalar.
type unitType struct {
	name, doc string
	schema    string // JSON
}

// source is what Load reads of the package.
type source struct {
	fset      *token.FileSet
	types     map[string]*ast.TypeSpec
	typeDocs  map[string]*ast.CommentGroup
	vars      map[string]ast.Expr // package-level var → its value
	unmarshal map[string]bool     // types with an UnmarshalYAML method
}

// Load reads the Go package in dir (its files for this platform, without
// tests) and documents the configuration that decodes into its struct
// type root.
func Load(dir, root string) (*Reference, error) {
	pkg, err := build.ImportDir(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("configdoc: %w", err)
	}
	src := &source{fset: token.NewFileSet(), types: map[string]*ast.TypeSpec{}, typeDocs: map[string]*ast.CommentGroup{},
		vars: map[string]ast.Expr{}, unmarshal: map[string]bool{}}
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(src.fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("configdoc: %w", err)
		}
		src.add(f)
	}
	r := &Reference{}
	w := &walker{src: src, ref: r, structs: map[string]*structType{}, units: map[string]*unitType{}}
	t, err := w.resolve(ast.NewIdent(root))
	if err != nil {
		return nil, err
	}
	if t.kind != kStruct {
		return nil, fmt.Errorf("configdoc: %s is not a struct type", root)
	}
	r.root = t.st
	r.fields = expand(t.st, "")
	return r, nil
}

// add records the declarations of a file.
func (s *source) add(f *ast.File) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					s.types[spec.Name.Name] = spec
					s.typeDocs[spec.Name.Name] = spec.Doc
					if spec.Doc == nil && len(d.Specs) == 1 {
						s.typeDocs[spec.Name.Name] = d.Doc
					}
				case *ast.ValueSpec:
					for i, n := range spec.Names {
						if i < len(spec.Values) {
							s.vars[n.Name] = spec.Values[i]
						}
					}
				}
			}
		case *ast.FuncDecl:
			if d.Recv != nil && d.Name.Name == "UnmarshalYAML" && len(d.Recv.List) == 1 {
				t := d.Recv.List[0].Type
				if star, ok := t.(*ast.StarExpr); ok {
					t = star.X
				}
				if id, ok := t.(*ast.Ident); ok {
					s.unmarshal[id.Name] = true
				}
			}
		}
	}
}

// walker reads the types reachable from the root.
type walker struct {
	src     *source
	ref     *Reference
	structs map[string]*structType
	units   map[string]*unitType
	stack   []string // the struct types being read, to refuse recursion
}

// resolve reads the type an expression names.
func (w *walker) resolve(e ast.Expr) (*typeRef, error) {
	switch e := e.(type) {
	case *ast.StarExpr:
		return w.resolve(e.X)
	case *ast.ArrayType:
		if e.Len != nil {
			return nil, w.errorf(e, "arrays are not supported; use a slice")
		}
		elem, err := w.resolve(e.Elt)
		if err != nil {
			return nil, err
		}
		return &typeRef{kind: kList, elem: elem}, nil
	case *ast.MapType:
		if k, ok := e.Key.(*ast.Ident); !ok || k.Name != "string" {
			return nil, w.errorf(e, "a map's keys must be strings")
		}
		elem, err := w.resolve(e.Value)
		if err != nil {
			return nil, err
		}
		return &typeRef{kind: kMap, elem: elem}, nil
	case *ast.Ident:
		switch e.Name {
		case "string":
			return &typeRef{kind: kString}, nil
		case "bool":
			return &typeRef{kind: kBool}, nil
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return &typeRef{kind: kInt}, nil
		case "float32", "float64":
			return &typeRef{kind: kNumber}, nil
		}
		return w.named(e)
	}
	return nil, w.errorf(e, "unsupported field type %s", w.exprString(e))
}

// named reads a type declared in the package.
func (w *walker) named(id *ast.Ident) (*typeRef, error) {
	name := id.Name
	if u, ok := w.units[name]; ok {
		return &typeRef{kind: kUnit, unit: u}, nil
	}
	if st, ok := w.structs[name]; ok {
		if slices.Contains(w.stack, name) {
			return nil, w.errorf(id, "%s contains itself", name)
		}
		return &typeRef{kind: kStruct, st: st}, nil
	}
	spec, ok := w.src.types[name]
	if !ok {
		return nil, w.errorf(id, "type %s is not declared in the package", name)
	}
	doc := w.src.typeDocs[name]
	if w.src.unmarshal[name] {
		u := &unitType{name: name, doc: docText(doc)}
		for _, d := range directives(doc) {
			switch d.verb {
			case "schema":
				u.schema = d.arg
			default:
				return nil, w.errorf(spec, "%s: unknown directive //config:%s on a type", name, d.verb)
			}
		}
		if u.schema == "" {
			return nil, w.errorf(spec, "%s decodes itself (UnmarshalYAML) but has no //config:schema directive", name)
		}
		w.units[name] = u
		w.ref.units = append(w.ref.units, u)
		return &typeRef{kind: kUnit, unit: u}, nil
	}
	s, ok := spec.Type.(*ast.StructType)
	if !ok {
		return w.resolve(spec.Type) // a named string, int, slice, ...
	}
	st := &structType{name: name, doc: docText(doc), keys: map[string]string{}}
	w.structs[name] = st
	w.ref.structs = append(w.ref.structs, st)
	w.stack = append(w.stack, name)
	defer func() { w.stack = w.stack[:len(w.stack)-1] }()
	if err := w.fields(st, s.Fields.List); err != nil {
		return nil, err
	}
	return &typeRef{kind: kStruct, st: st}, nil
}

// fields reads the fields of a struct type into st, in source order;
// an inline field's fields are read in its place.
func (w *walker) fields(st *structType, list []*ast.Field) error {
	var prev *ast.CommentGroup // the last doc comment seen, for fields without one
	for _, f := range list {
		tag := ""
		if f.Tag != nil {
			unquoted, err := strconv.Unquote(f.Tag.Value)
			if err != nil {
				return w.errorf(f, "bad struct tag %s", f.Tag.Value)
			}
			tag = reflect.StructTag(unquoted).Get("yaml")
		}
		key, opts, _ := strings.Cut(tag, ",")
		inline := slices.Contains(strings.Split(opts, ","), "inline")
		if f.Doc != nil {
			prev = f.Doc
		}
		if len(f.Names) == 0 { // embedded
			if !inline {
				return w.errorf(f, "an embedded field needs `yaml:\",inline\"`")
			}
			t, err := w.resolve(f.Type)
			if err != nil {
				return err
			}
			if t.kind != kStruct {
				return w.errorf(f, "an inline field must be a struct")
			}
			for _, d := range t.st.fields {
				st.fields = append(st.fields, d)
				st.keys[d.goName] = d.key
			}
			continue
		}
		if inline {
			return w.errorf(f, "only embedded fields may be inline")
		}
		if len(f.Names) > 1 && key != "" && key != "-" {
			return w.errorf(f, "%d fields share one yaml tag", len(f.Names))
		}
		for _, n := range f.Names {
			if !n.IsExported() || key == "-" {
				continue
			}
			k := key
			if k == "" {
				k = strings.ToLower(n.Name) // as yaml.v3 names an untagged field
			}
			d, err := w.field(f, n.Name, k, prev)
			if err != nil {
				return err
			}
			st.fields = append(st.fields, d)
			st.keys[n.Name] = k
		}
	}
	return nil
}

// field reads one field; prev is the nearest doc comment at or before it.
func (w *walker) field(f *ast.Field, goName, key string, prev *ast.CommentGroup) (*fieldDef, error) {
	t, err := w.resolve(f.Type)
	if err != nil {
		return nil, err
	}
	d := &fieldDef{key: key, goName: goName, typ: t, pos: w.pos(f)}
	switch {
	case f.Doc != nil:
		d.doc = docText(f.Doc)
	case prev != nil && namesWord(docText(prev), goName):
		d.doc = docText(prev)
	}
	d.required, d.requiredWhen = required(d.doc)
	d.dflt = defaultOf(d.doc)
	for _, dir := range directives(f.Doc) {
		switch dir.verb {
		case "enum":
			d.enum, err = w.enum(f, dir.arg)
		case "pattern":
			d.pattern, err = w.pattern(f, dir.arg)
		default:
			err = w.errorf(f, "%s: unknown directive //config:%s on a field", goName, dir.verb)
		}
		if err != nil {
			return nil, err
		}
	}
	if (d.enum != nil || d.pattern != "") && scalar(t).kind != kString {
		return nil, w.errorf(f, "%s: //config:enum and //config:pattern constrain strings only", goName)
	}
	return d, nil
}

// scalar is what enum and pattern constrain: the value of a scalar, the
// elements of a list, the keys of a map.
func scalar(t *typeRef) *typeRef {
	switch t.kind {
	case kList:
		return scalar(t.elem)
	case kMap:
		return &typeRef{kind: kString}
	}
	return t
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// enum reads the values of //config:enum: the words given, or the keys
// or elements of the package-level literal named.
func (w *walker) enum(f *ast.Field, arg string) ([]string, error) {
	words := strings.Fields(arg)
	if len(words) == 0 {
		return nil, w.errorf(f, "//config:enum needs values or a variable")
	}
	if len(words) > 1 || !identRE.MatchString(words[0]) {
		return words, nil
	}
	e, ok := w.src.vars[words[0]]
	lit, isLit := e.(*ast.CompositeLit)
	if !ok || !isLit {
		return nil, w.errorf(f, "//config:enum %s: want a package-level map or slice literal", words[0])
	}
	var values []string
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			el = kv.Key
		}
		s, err := stringLit(el)
		if err != nil {
			return nil, w.errorf(el, "//config:enum %s: %v", words[0], err)
		}
		values = append(values, s)
	}
	return values, nil
}

// pattern reads the expression of //config:pattern: the literal of a
// package-level regexp.MustCompile.
func (w *walker) pattern(f *ast.Field, arg string) (string, error) {
	e, ok := w.src.vars[arg]
	call, isCall := e.(*ast.CallExpr)
	if !ok || !isCall || w.exprString(call.Fun) != "regexp.MustCompile" || len(call.Args) != 1 {
		return "", w.errorf(f, "//config:pattern %s: want a package-level var = regexp.MustCompile(literal)", arg)
	}
	s, err := stringLit(call.Args[0])
	if err != nil {
		return "", w.errorf(f, "//config:pattern %s: %v", arg, err)
	}
	if _, err := regexp.Compile(s); err != nil {
		return "", w.errorf(f, "//config:pattern %s: %v", arg, err)
	}
	return s, nil
}

func stringLit(e ast.Expr) (string, error) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", fmt.Errorf("want a string literal")
	}
	return strconv.Unquote(lit.Value)
}

func (w *walker) pos(n ast.Node) string {
	p := w.src.fset.Position(n.Pos())
	return fmt.Sprintf("%s:%d", filepath.Base(p.Filename), p.Line)
}

func (w *walker) errorf(n ast.Node, format string, args ...any) error {
	return fmt.Errorf("configdoc: %s: %s", w.pos(n), fmt.Sprintf(format, args...))
}

func (w *walker) exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return w.exprString(e.X) + "." + e.Sel.Name
	case *ast.StarExpr:
		return "*" + w.exprString(e.X)
	}
	return fmt.Sprintf("%T", e)
}

// directive is a //config:verb arg line of a doc comment.
type directive struct{ verb, arg string }

func directives(cg *ast.CommentGroup) []directive {
	if cg == nil {
		return nil
	}
	var ds []directive
	for _, c := range cg.List {
		rest, ok := strings.CutPrefix(c.Text, "//config:")
		if !ok {
			continue
		}
		verb, arg, _ := strings.Cut(rest, " ")
		ds = append(ds, directive{verb: verb, arg: strings.TrimSpace(arg)})
	}
	return ds
}

// docText is a doc comment's text, without directives.
func docText(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.TrimSpace(cg.Text())
}

// expand lists the keys of st at path and below, depth first.
func expand(st *structType, path string) []Field {
	var out []Field
	for _, d := range st.fields {
		p := d.key
		if path != "" {
			p = path + "." + d.key
		}
		out = append(out, Field{Path: p, Pos: d.pos, Doc: d.doc, Required: d.required, RequiredWhen: d.requiredWhen,
			Default: d.dflt, Enum: d.enum, def: d})
		t := d.typ
		for {
			switch t.kind {
			case kList:
				p += "[]"
				t = t.elem
				continue
			case kMap:
				p += ".*"
				t = t.elem
				continue
			}
			break
		}
		if t.kind == kStruct {
			out = append(out, expand(t.st, p)...)
		}
	}
	return out
}

// Fields lists every key of the configuration, depth first, in source
// order; a struct type used at several places is listed at each.
func (r *Reference) Fields() []Field {
	return slices.Clone(r.fields)
}
