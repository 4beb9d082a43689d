package configdoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicegw/sluice/internal/configdoc/schematest"
)

// fixture is a configuration with a field of every kind Load reads.
const fixture = `package cfg

import (
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Root is the file. Relative paths are relative to it.
type Root struct {
	// Name is the name. Required.
	Name string ` + "`yaml:\"name\"`" + `
	// Timeout bounds it (default 30s; at least 1s).
	Timeout *Duration ` + "`yaml:\"timeout\"`" + `
	// Items are the items. Required: at least one.
	Items []Item ` + "`yaml:\"items\"`" + `
	// Labels label things by their names.
	Labels map[string][]string ` + "`yaml:\"labels\"`" + `
	Common ` + "`yaml:\",inline\"`" + `
	// Skipped is not in the file.
	Skipped string ` + "`yaml:\"-\"`" + `
	// Untagged takes its lower-cased name (default true).
	Untagged *bool

	internal string
}

// Common are keys several types share.
type Common struct {
	// Mode is fast (default) or slow.
	//
	//config:enum modes
	Mode string ` + "`yaml:\"mode\"`" + `
}

var modes = map[string]bool{"fast": true, "slow": true}

var idRE = regexp.MustCompile(` + "`^[a-z]+$`" + `)

// Item is one item (see item.go).
type Item struct {
	// ID names the item. Required unless name is set; see KeyFile.
	//
	//config:pattern idRE
	ID string ` + "`yaml:\"id\"`" + `
	// CertFile and KeyFile are a pair, *_test files at <dir>.
	CertFile string ` + "`yaml:\"cert_file\"`" + `
	KeyFile  string ` + "`yaml:\"key_file\"`" + `
	Count    int    ` + "`yaml:\"count\"`" + `
}

// Duration is a length of time.
//
//config:schema {"type": "string", "pattern": "^[0-9]+s$"}
type Duration int64

// UnmarshalYAML reads "10s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return nil }
`

// load documents the type Root of a package of one file.
func load(t *testing.T, src string) (*Reference, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cfg.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(dir, "Root")
}

func TestLoadWalksTheYAMLKeysFromTheRootType(t *testing.T) {
	r, err := load(t, fixture)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		Path, Pos, Required, Default string
		Enum                         []string
		Documented                   bool
	}
	var got []key
	for _, f := range r.Fields() {
		req := f.RequiredWhen
		if f.Required {
			req = "always"
		}
		got = append(got, key{f.Path, f.Pos, req, f.Default, f.Enum, f.Doc != ""})
	}
	want := []key{
		{"name", "cfg.go:12", "always", "", nil, true},
		{"timeout", "cfg.go:14", "", "30s", nil, true},
		{"items", "cfg.go:16", "always", "", nil, true},
		{"items[].id", "cfg.go:45", "unless name is set", "", nil, true},
		{"items[].cert_file", "cfg.go:47", "", "", nil, true},
		{"items[].key_file", "cfg.go:48", "", "", nil, true}, // named by cert_file's comment
		{"items[].count", "cfg.go:49", "", "", nil, false},
		{"labels", "cfg.go:18", "", "", nil, true},
		{"mode", "cfg.go:33", "", "fast", []string{"fast", "slow"}, true},
		{"untagged", "cfg.go:23", "", "true", nil, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestSchemaIsClosedAndSaysWhatTheCommentsSay(t *testing.T) {
	r, err := load(t, fixture)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Schema("fixture")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	schema := schematest.Load(t, path)
	valid := "name: a\ntimeout: 10s\nitems: [{id: abc, cert_file: c, key_file: k, count: 2}]\nlabels: {x: [a, b]}\nmode: slow\nuntagged: false\n"
	if err := schema.Validate([]byte(valid)); err != nil {
		t.Fatalf("the schema refuses a valid document: %v\n%s", err, b)
	}
	for _, tt := range []struct{ name, old, new string }{
		{"unknown key", "mode: slow\n", "mode: slow\nmood: slow\n"},
		{"unknown key in a list's element", "count: 2", "count: 2, size: 3"},
		{"skipped key", "mode: slow\n", "mode: slow\nskipped: x\n"},
		{"required key missing", "name: a\n", ""},
		{"value outside the enum", "mode: slow", "mode: medium"},
		{"value the pattern refuses", "id: abc", "id: ABC"},
		{"value the type's schema refuses", "timeout: 10s", "timeout: 10m"},
		{"wrong type in a map", "[a, b]", "[a, [b]]"},
		{"string for a number", "count: 2", "count: two"},
	} {
		doc := strings.Replace(valid, tt.old, tt.new, 1)
		if err := schema.Validate([]byte(doc)); err == nil {
			t.Errorf("%s: the schema accepts\n%s", tt.name, doc)
		}
	}
	for _, want := range []string{
		`"default": "30s"`, `"default": "fast"`, `"default": true`,
		`"description": "cert_file and key_file are a pair, *_test files at <dir>."`,
		`"description": "One item."`,
		`"description": "A length of time."`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the schema lacks %s:\n%s", want, b)
		}
	}
}

func TestMarkdownNamesKeysAndEscapesMarkup(t *testing.T) {
	r, err := load(t, fixture)
	if err != nil {
		t.Fatal(err)
	}
	md := string(r.Markdown(Page{Title: "Fixture", Notice: "generated", Intro: "Intro.", Example: []byte("name: a\n"), ExamplePath: "ex.yaml"}))
	for _, want := range []string{
		"<!-- generated -->\n\n# Fixture\n\nThe file. Relative paths are relative to it.\n\nIntro.\n",
		"```yaml\nname: a\n```",
		"### duration\n\nA length of time.\n",
		"## `name`\n\nstring · required\n\n`name` is the name. Required.\n",
		"## `timeout`\n\n[duration](#duration) · default `30s`\n",
		"### `items[].id`\n\nstring · required unless name is set\n\n`id` names the item. Required unless name is set; see `key_file`.\n",
		"### `items[].key_file`\n\nstring\n\n`cert_file` and `key_file` are a pair, \\*\\_test files at \\<dir>.\n",
		"## `items`\n\nlist of objects · required\n\n`items` are the items. Required: at least one.\n\nOne item.\n",
		"## `labels`\n\nmap of lists of strings\n",
		"## `mode`\n\nstring · one of `fast`, `slow` · default `fast`\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the page lacks\n%s\nin\n%s", want, md)
		}
	}
}

func TestLoadRefusesWhatItCannotDocument(t *testing.T) {
	field := func(decl string) string {
		return "package cfg\n\n// Root is the file.\ntype Root struct {\n\t// X is x.\n\t" + decl + "\n}\n"
	}
	tests := []struct{ name, src, want string }{
		{"a type of another package", field("X time.Duration `yaml:\"x\"`"), "unsupported field type time.Duration"},
		{"a map with other keys", field("X map[int]string `yaml:\"x\"`"), "a map's keys must be strings"},
		{"an array", field("X [2]string `yaml:\"x\"`"), "use a slice"},
		{"an embedded struct decoded as a key", field("Sub") + "type Sub struct{}\n", "needs `yaml:\",inline\"`"},
		{"a type decoding itself without a schema", field("X U `yaml:\"x\"`") +
			"type U int\nfunc (u *U) UnmarshalYAML(n *yaml.Node) error { return nil }\n", "no //config:schema directive"},
		{"a recursive type", field("X *Root `yaml:\"x\"`"), "Root contains itself"},
		{"an unknown directive", field("//\n\t//config:enumm a b\n\tX string `yaml:\"x\"`"), "unknown directive //config:enumm"},
		{"an enum of a number", field("//\n\t//config:enum 1 2\n\tX int `yaml:\"x\"`"), "constrain strings only"},
		{"a pattern that is no regexp var", field("//\n\t//config:pattern nope\n\tX string `yaml:\"x\"`"), "want a package-level var = regexp.MustCompile"},
		{"an undeclared type", field("X Missing `yaml:\"x\"`"), "type Missing is not declared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestRequiredAndDefaultAreReadFromTheWords(t *testing.T) {
	tests := []struct {
		doc        string
		always     bool
		when, dflt string
	}{
		{"Listen is the address. Required.", true, "", ""},
		{"Sources are the sources.\nRequired: at least one.", true, "", ""},
		{"ID is the key's id. Required, and unique.", true, "", ""},
		{"Replica names the trail. Required with\nredis_witness or stream.", false, "with redis_witness or stream", ""},
		{"Dir holds policies. Required unless bundle is set; not both.", false, "unless bundle is set", ""},
		{"Issuer is the required \"iss\" claim.", false, "", ""},
		{"Poll is the interval (default 30s; at least 1s).", false, "", "30s"},
		{"CheckpointEvery makes one after this many (default\n1000).", false, "", "1000"},
		{"OnFailure: closed (default) refuses; open serves.", false, "", "closed"},
		{"Accounting is pure (default; ε adds) or zcdp.", false, "", "pure"},
		{"Class: quasi (the default: with others), sensitive or id.", false, "", "quasi"},
		{"Key is the stream's key (default PREFIX:audit:stream), one for all.", false, "", "PREFIX:audit:stream"},
		{`Records is the member (default "items"; "" for an array).`, false, "", `"items"`},
		{"SuppressBelow withholds a cell (default 0: only small ones).", false, "", "0"},
		{"SpoolDir holds them (default the system temp dir).", false, "", "the system temp dir"},
	}
	for _, tt := range tests {
		always, when := required(tt.doc)
		if always != tt.always || when != tt.when {
			t.Errorf("required(%q) = %v, %q; want %v, %q", tt.doc, always, when, tt.always, tt.when)
		}
		if got := defaultOf(tt.doc); got != tt.dflt {
			t.Errorf("defaultOf(%q) = %q, want %q", tt.doc, got, tt.dflt)
		}
	}
}

func TestKeysForWritesGoNamesAsKeys(t *testing.T) {
	keys := map[string]string{"TLS": "tls", "CertFile": "cert_file", "KeyFile": "key_file", "Refresh": "refresh",
		"RefreshRateLimit": "refresh_rate_limit", "Duration": "duration"}
	tests := []struct{ doc, want string }{
		{"CertFile and KeyFile are a pair.", "`cert_file` and `key_file` are a pair."},
		{"TLS, when present, talks TLS to Redis.", "`tls`, when present, talks TLS to Redis."},
		{"Refresh is how often, at most every RefreshRateLimit.", "`refresh` is how often, at most every `refresh_rate_limit`."},
		{"Refresh and then some (see config_tls.go).", "`refresh` and then some."},
		{"TLS serves HTTPS (see\nconfig_tls.go). Refresh stays.", "`tls` serves HTTPS. Refresh stays."},
		{"A time.Duration, not a Duration.", "A time.Duration, not a Duration."},
	}
	for _, tt := range tests {
		if got := keysFor(tt.doc, keys, code); got != tt.want {
			t.Errorf("keysFor(%q) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}
