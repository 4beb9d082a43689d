package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/internal/configdoc/schematest"
)

// TestDemoConfigMatchesTheSchema: the configuration the demo writes, with
// embedded state and with Redis, is one the JSON Schema of
// docs/config.schema.json accepts, so that the schema is checked against
// the configuration the project ships and runs.
func TestDemoConfigMatchesTheSchema(t *testing.T) {
	schema := schematest.Load(t, "../../docs/config.schema.json")
	upstreams := map[string]string{"police": "http://127.0.0.1:9001", "health": "http://127.0.0.1:9002", "civil": "http://127.0.0.1:9003"}
	for _, rep := range []demoReplica{
		{Addr: "127.0.0.1:8080", Config: "sluice.yaml", AuditDir: "audit"},
		{Addr: "127.0.0.1:8081", Name: "r1", Redis: "127.0.0.1:6379", Config: "sluice-r1.yaml", AuditDir: "audit-r1"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, upstreamFile), []byte("upstream-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, rep.Config)
		if err := writeDemoConfig(path, rep, filepath.Join(dir, "policies"), upstreams); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(b); err != nil {
			t.Errorf("%s: the schema refuses the demo's configuration: %v", rep.Config, err)
		}
	}
}
