package gateway

import (
	"fmt"
	"strings"
	"testing"
)

func TestLoadConfigNamesTheUnknownKeysPathAndTheNearestKnownKey(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		at       string // the error names the line holding this
		want     string // and says this
	}{
		{"a dataset's key, transposed", "        privacy_unit: patient_id\n", "        privacy_unti: patient_id\n", "privacy_unti",
			"field privacy_unti not found at sources.health.datasets.visits.privacy_unti; did you mean privacy_unit?"},
		{"a top-level key", "listen: 127.0.0.1:8080\n", "lisen: 127.0.0.1:8080\n", "lisen",
			"field lisen not found at lisen; did you mean listen?"},
		{"a key of a listed key without a name", "      public_key_file: keys/demo.pub\n", "      public_key_fil: keys/demo.pub\n", "public_key_fil",
			"field public_key_fil not found at auth.keys[0].public_key_fil; did you mean public_key_file?"},
		{"a field's key, under a map", "          district: {type: string, level: L1}\n", "          district: {type: string, levle: L1}\n", "levle",
			"field levle not found at sources.health.datasets.visits.fields.district.levle; did you mean level?"},
		{"a source's key", "    timeout: 3s\n", "    timeuot: 3s\n", "timeuot",
			"field timeuot not found at sources.police.timeuot; did you mean timeout?"},
		{"a key near nothing known", "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\nfrobnicate: true\n", "frobnicate",
			"field frobnicate not found at frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := edit(t, tt.old, tt.new)
			path := writeConfig(t, yaml)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatal("LoadConfig accepted an unknown key")
			}
			want := fmt.Sprintf("line %d: %s", lineOf(t, yaml, tt.at), tt.want)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not say %q", err, want)
			}
			if !strings.Contains(tt.want, "did you mean") && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("error %q suggests a key for one near nothing known", err)
			}
		})
	}
}

func TestLoadConfigReportsEveryUnknownKey(t *testing.T) {
	yaml := edit(t, "    timeout: 3s\n", "    timeout: 3s\n    timout: 3s\n")
	yaml = strings.Replace(yaml, "listen: 127.0.0.1:8080\n", "listne: 127.0.0.1:8080\n", 1)
	_, err := LoadConfig(writeConfig(t, yaml))
	if err == nil {
		t.Fatal("LoadConfig accepted the config")
	}
	for _, want := range []string{
		fmt.Sprintf("line %d: field listne not found at listne; did you mean listen?", lineOf(t, yaml, "listne")),
		fmt.Sprintf("line %d: field timout not found at sources.police.timout; did you mean timeout?", lineOf(t, yaml, "timout")),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not say %q", err, want)
		}
	}
}
