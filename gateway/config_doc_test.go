package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/internal/configdoc"
	"github.com/sluicegw/sluice/internal/configdoc/schematest"
)

// The configuration reference (docs/config.md) and its JSON Schema
// (docs/config.schema.json) are generated from the doc comments of the
// configuration's types (config_doc.go). These tests keep them current,
// complete, and in agreement with what Validate accepts.

func TestConfigReferenceIsUpToDate(t *testing.T) {
	files, err := configdoc.Generate(".")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run %s", strings.TrimPrefix(filepath.ToSlash(path), "../"), configdoc.GenerateCommand)
		}
	}
}

func TestEveryConfigFieldHasADocComment(t *testing.T) {
	for _, f := range loadReference(t).Fields() {
		if strings.TrimSpace(f.Doc) == "" {
			t.Errorf("%s: %s has no doc comment: say what it means, its default and whether it is required", f.Pos, f.Path)
		}
	}
}

// everySection is a valid configuration that sets, somewhere, every key
// whose doc comment says it is required and every key of a fixed set of
// values, so that the tests below can check the doc comments against
// Validate.
const everySection = `listen: 127.0.0.1:8443
listen_tls:
  cert_file: tls/gateway.crt
  key_file: tls/gateway.key
  min_version: "1.3"
hmac_key_file: keys/hmac.key
auth:
  issuer: https://idp.example
  audience: sluice
  keys:
    - {id: demo, algorithms: [EdDSA], public_key_file: keys/demo.pub}
policy:
  bundle:
    url: https://bundles.example/sluice.tar.gz
    credentials: {header: Authorization, value_env: BUNDLE_TOKEN}
    signing:
      key_id: release
      keys:
        - {id: release, algorithm: RS256, public_key_file: keys/bundle.pem}
        - {id: shared, algorithm: HS256, secret_file: keys/bundle.key}
audit:
  dir: audit
  checkpoint_key_file: keys/checkpoint.pem
  replica: r1
  redis_witness: true
  stream: {max_len: 1000}
state:
  redis:
    addrs: [127.0.0.1:6379]
    tls: {cert_file: tls/redis.crt, key_file: tls/redis.key}
  on_failure: open
rate_limits:
  consumer: {rate: 100}
  dataset: {rate: 500, per: 1s}
  unauthenticated: {rate: 10, burst: 20}
sources:
  - name: health
    upstream: https://health.example/api
    credentials: {header: Authorization, value_file: keys/health.token}
    tls: {ca_file: tls/health-ca.pem}
    datasets:
      - name: visits
        path: /visits
        population: residents
        classification: L3
        sharing: conditional
        owner: health
        domains: {district: [east, west]}
        fields:
          patient_id: {type: id_cn, level: L4, class: id}
          district: {type: string, level: L1, class: quasi}
          diagnosis: {type: icd10, level: L3, class: sensitive}
      - name: visits_by_district
        path: /visits/by-district
        sharing: none
        basis: aggregates are published, not shared
        fields:
          district: {type: string, level: L1}
          visits: {type: integer, level: L1}
        noise: {mechanism: laplace, sensitivity: {visits: 1}}
populations:
  - name: residents
    budget: {epsilon: 10, period: 365d}
    allocations: {analyst: 6, open: 2}
    accounting: zcdp
default_population:
  budget: {epsilon: 1}
  allocations: {analyst: 1}
  accounting: pure
cors:
  origins: [https://app.example]
open:
  enabled: true
  rate: {rate: 60}
  releases:
    - {id: visits-by-district, title: Visits by district, dataset: health/visits, metric: count, group_by: district, epsilon: 0.1, every: 30d}
hub:
  due: {request: 5}
  webhooks:
    - {dept: civil, url: "https://civil.example/hooks/sluice", secret_file: keys/civil-webhook.key}
`

func TestConfigKeysDocumentedAsRequiredAreRequiredByValidate(t *testing.T) {
	if errs := validationErrors(t, []byte(everySection)); errs != nil {
		t.Fatalf("everySection is not valid: %q", errs)
	}
	for _, f := range loadReference(t).Fields() {
		if !f.Required {
			continue
		}
		found, _ := occurrences(t, everySection, f.Path)
		n := len(found)
		if n == 0 {
			t.Errorf("%s is documented as required (%s) but everySection does not set it: add it there", f.Path, f.Pos)
		}
		for i := range n {
			doc, at := editKey(t, f.Path, i, func(parent, key, _ *yaml.Node) {
				for j := 0; j+1 < len(parent.Content); j += 2 {
					if parent.Content[j] == key {
						parent.Content = slices.Delete(parent.Content, j, j+2)
						return
					}
				}
			})
			if !names(validationErrors(t, doc), at) {
				t.Errorf("%s is documented as required (%s), but Validate accepts a configuration without %s", f.Path, f.Pos, at)
			}
		}
	}
}

func TestConfigEnumsAreWhatValidateAccepts(t *testing.T) {
	for _, f := range loadReference(t).Fields() {
		if len(f.Enum) == 0 {
			continue
		}
		found, _ := occurrences(t, everySection, f.Path)
		n := len(found)
		if n == 0 {
			t.Errorf("%s has a fixed set of values (%s) but everySection does not set it: add it there", f.Path, f.Pos)
			continue
		}
		set := func(i int, v string) (doc []byte, at string) {
			return editKey(t, f.Path, i, func(_, _, value *yaml.Node) {
				if value.Kind == yaml.SequenceNode || value.Kind == yaml.MappingNode {
					value = value.Content[0] // a list's first element, a map's first key
				}
				value.Kind, value.Tag, value.Value, value.Style = yaml.ScalarNode, "!!str", v, yaml.DoubleQuotedStyle
			})
		}
		// Each value is accepted somewhere: a bundle key's algorithm
		// must also fit the key's file, so only some keys take it.
		for _, v := range f.Enum {
			accepted := false
			for i := range n {
				doc, at := set(i, v)
				if !names(validationErrors(t, doc), at) {
					accepted = true
					break
				}
			}
			if !accepted {
				t.Errorf("%s: the schema offers %q (%s), which Validate refuses everywhere in everySection", f.Path, v, f.Pos)
			}
		}
		if doc, at := set(0, "not-among-them"); !names(validationErrors(t, doc), at) {
			t.Errorf("%s: Validate accepts %q, a value the schema's enum %q refuses", at, "not-among-them", f.Enum)
		}
	}
}

// configExamples are the configuration files of docs/examples, by path.
func configExamples(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../docs/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string][]byte{}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		examples[path] = b
	}
	if len(examples) == 0 {
		t.Fatal("no configuration in docs/examples")
	}
	return examples
}

func TestConfigExamplesAreValidAndMatchTheSchema(t *testing.T) {
	schema := schematest.Load(t, configdoc.SchemaFile)
	examples := configExamples(t)
	examples["validConfig"] = []byte(validConfig)
	examples["validConfig with a bundle"] = []byte(strings.Replace(validConfig, "policy:\n  dir: policies\n", bundleConfig, 1))
	examples["everySection"] = []byte(everySection)
	for name, doc := range examples {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadConfig(writeConfig(t, string(doc))); err != nil {
				t.Errorf("LoadConfig: %v", err)
			}
			if err := schema.Validate(doc); err != nil {
				t.Errorf("the schema refuses a configuration the gateway accepts: %v", err)
			}
		})
	}
}

// The README and the docs show whole configurations in YAML blocks, to
// illustrate the keys the prose around them explains; the schema keeps
// their keys and types current.
func TestConfigsShownInTheDocsMatchTheSchema(t *testing.T) {
	schema := schematest.Load(t, configdoc.SchemaFile)
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	wholeConfig := regexp.MustCompile(`(?m)^listen:`) // not a fragment
	found := 0
	for _, page := range append(pages, "../README.md") {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(b, -1) {
			if !wholeConfig.Match(m[1]) {
				continue
			}
			found++
			if err := schema.Validate(m[1]); err != nil {
				t.Errorf("%s, YAML block %d: %v", page, i+1, err)
			}
		}
	}
	if found == 0 {
		t.Error("found no whole configuration in README.md or docs/*.md")
	}
}

func TestConfigSchemaRefusesWhatTheGatewayRefuses(t *testing.T) {
	schema := schematest.Load(t, configdoc.SchemaFile)
	tests := []struct{ name, old, new string }{
		{"unknown top-level key", "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\nlisten_addr: :80\n"},
		{"unknown nested key", "    timeout: 3s\n", "    timeout: 3s\n    timout: 3s\n"},
		{"unknown key of a map's value", "{type: string, level: L2}", "{type: string, levle: L2}"},
		{"list where a string belongs", "listen: 127.0.0.1:8080\n", "listen: [a, b]\n"},
		{"string where a number belongs", "  dir: /var/lib/sluice/audit\n", "  dir: /var/lib/sluice/audit\n  checkpoint_every: many\n"},
		{"duration without unit", "    timeout: 3s\n", "    timeout: \"3\"\n"},
		{"duration in words", "    timeout: 3s\n", "    timeout: 3 seconds\n"},
		{"size in decimal units", "policy:\n", "limits:\n  max_record_bytes: 1MB\npolicy:\n"},
		{"negative size", "policy:\n", "limits:\n  max_response_bytes: -1\npolicy:\n"},
		{"level outside L1..L4", "classification: L3", "classification: secret"},
		{"failure mode outside closed and open", "policy:\n", "state:\n  on_failure: sometimes\npolicy:\n"},
		{"required key missing", "hmac_key_file: keys/hmac.key\n", ""},
		{"name the gateway refuses", "  - name: police\n", "  - name: Police\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := edit(t, tt.old, tt.new)
			if _, err := LoadConfig(writeConfig(t, doc)); err == nil {
				t.Fatalf("LoadConfig accepts the edit: the test's case is wrong")
			}
			if err := schema.Validate([]byte(doc)); err == nil {
				t.Errorf("the schema accepts a configuration the gateway refuses:\n%s", doc)
			}
		})
	}
}

func TestDurationAndSizeSchemasAcceptWhatTheyDecode(t *testing.T) {
	tests := []struct {
		def    string
		decode func(*yaml.Node) error
		values []string
	}{
		{"Duration", func(n *yaml.Node) error { var d Duration; return n.Decode(&d) }, []string{
			`"10s"`, `"1m30s"`, `"250ms"`, `"1.5h"`, `".5s"`, `"1.s"`, `"0"`, `"-1s"`, `"+5m"`, `"1µs"`, `"1us"`, `"365d"`,
			`"0365d"`, `"1d"`, `"10"`, `"3 seconds"`, `"0d"`, `"-1d"`, `"1.5d"`, `"s"`, `""`, `"1e3s"`, `"1h 30m"`,
		}},
		{"Size", func(n *yaml.Node) error { var s Size; return n.Decode(&s) }, []string{
			`1048576`, `"1048576"`, `0`, `"64KiB"`, `"1MiB"`, `"1GiB"`, `"12abc"`, `"1.5MiB"`, `"1 MiB"`, `"+2048"`, `-1`,
			`"MiB"`, `"1MB"`, `"1kib"`,
		}},
	}
	for _, tt := range tests {
		schema := schematest.Load(t, configdoc.SchemaFile+"#/$defs/"+tt.def)
		for _, v := range tt.values {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(v), &n); err != nil {
				t.Fatal(err)
			}
			decodes := tt.decode(n.Content[0]) == nil
			if valid := schema.Validate([]byte(v)) == nil; valid != decodes {
				t.Errorf("%s %s: the schema says valid=%v, decoding says valid=%v", tt.def, v, valid, decodes)
			}
		}
	}
}

func loadReference(t *testing.T) *configdoc.Reference {
	t.Helper()
	r, err := configdoc.Load(".", "Config")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// validationErrors decodes a configuration and validates it: nil when it
// is valid, else one line per problem, each starting with the field's
// path.
func validationErrors(t *testing.T, doc []byte) []string {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode:\n%s\n%v", doc, err)
	}
	if err := c.Validate(); err != nil {
		return strings.Split(err.Error(), "\n")
	}
	return nil
}

// names reports whether one of errs is about the field at path or a field
// inside it.
func names(errs []string, path string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e, path+":") || strings.HasPrefix(e, path+".") || strings.HasPrefix(e, path+"[") {
			return true
		}
	}
	return false
}

// occurrence is a key of a YAML document: its mapping, the key and
// value nodes, and its path as validation names it (sources[0].name).
type occurrence struct {
	parent, key, value *yaml.Node
	path               string
}

// occurrences finds the keys at a reference path (sources[].datasets[].name,
// fields.*.level) in a YAML document, in document order.
func occurrences(t *testing.T, doc, path string) ([]occurrence, *yaml.Node) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	type at struct {
		n    *yaml.Node
		path string
	}
	nodes := []at{{root.Content[0], ""}}
	var found []occurrence
	segs := strings.Split(path, ".")
	for s, seg := range segs {
		key := strings.TrimRight(seg, "[]")
		lists := (len(seg) - len(key)) / 2
		var next []at
		for _, a := range nodes {
			if a.n.Kind != yaml.MappingNode {
				continue
			}
			for i := 0; i+1 < len(a.n.Content); i += 2 {
				k, v := a.n.Content[i], a.n.Content[i+1]
				if key != "*" && k.Value != key {
					continue
				}
				p := k.Value
				if a.path != "" {
					p = a.path + "." + k.Value
				}
				if s == len(segs)-1 {
					found = append(found, occurrence{parent: a.n, key: k, value: v, path: p})
					continue
				}
				elems := []at{{v, p}}
				for range lists {
					var inner []at
					for _, e := range elems {
						if e.n.Kind == yaml.SequenceNode {
							for j, c := range e.n.Content {
								inner = append(inner, at{c, e.path + "[" + strconv.Itoa(j) + "]"})
							}
						}
					}
					elems = inner
				}
				next = append(next, elems...)
			}
		}
		nodes = next
	}
	return found, &root
}

// editKey changes the i-th occurrence in everySection of the key at a
// reference path, and returns the changed document and the key's path.
func editKey(t *testing.T, path string, i int, change func(parent, key, value *yaml.Node)) (doc []byte, at string) {
	t.Helper()
	found, root := occurrences(t, everySection, path)
	o := found[i]
	change(o.parent, o.key, o.value)
	doc, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return doc, o.path
}
