package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitPath is the systemd unit shipped for operators.
var unitPath = filepath.Join(repoRoot, "deploy", "sluice.service")

// TestDeploySystemdUnitVerifies runs systemd-analyze verify on the unit,
// as it would be installed but with /bin/true for the binary: verify
// refuses a unit whose ExecStart is missing, and the binary is not
// installed where the unit expects it on a build machine. Every other
// complaint about the unit, warnings of unknown keys included, fails.
func TestDeploySystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH (no systemd here): the unit is not verified")
	}
	stand, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to stand in for the binary")
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const exec0 = "ExecStart=/usr/local/bin/sluice "
	if strings.Count(string(b), "\nExecStart=") != 1 || !strings.Contains(string(b), "\n"+exec0) {
		t.Fatalf("%s: want one %q line", unitPath, exec0)
	}
	unit := strings.Replace(string(b), exec0, "ExecStart="+stand+" ", 1)
	path := filepath.Join(t.TempDir(), "sluice.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "sluice.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// unitSettings are the unit's Key=Value lines; a key given more than
// once keeps every value.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		settings[k] = append(settings[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

// TestDeploySystemdUnitIsHardened: the unit keeps each of the sandbox
// settings operators rely on; systemd ignores a misspelt key with only a
// warning, so verify alone would not notice one gone.
func TestDeploySystemdUnitIsHardened(t *testing.T) {
	settings := unitSettings(t)
	for _, want := range [][2]string{
		{"User", "sluice"},
		{"DynamicUser", "no"},
		{"ExecStart", "/usr/local/bin/sluice serve --config /etc/sluice/sluice.yaml"},
		{"Restart", "on-failure"},
		{"LimitNOFILE", "65536"},
		{"StateDirectory", "sluice"},
		{"ReadWritePaths", "/var/lib/sluice"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "yes"},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"SystemCallArchitectures", "native"},
	} {
		if got := settings[want[0]]; len(got) != 1 || got[0] != want[1] {
			t.Errorf("%s=%q, want %s=%s", want[0], got, want[0], want[1])
		}
	}
}

// dockerStages are the Dockerfile's build stages, each its FROM line and
// the instructions after it, continuation lines joined.
func dockerStages(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]string
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cur += line
		if strings.HasSuffix(cur, "\\") {
			cur = strings.TrimSuffix(cur, "\\") + " "
			continue
		}
		if strings.HasPrefix(cur, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %q before the first FROM", cur)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], cur)
		cur = ""
	}
	return stages
}

// TestDeployDockerfileBuildsAStaticBinaryForDistrolessNonroot checks the
// Dockerfile as text: no Docker engine exists here to build it. The
// binary must be static (distroless/static has no libc) and the image
// must run as nonroot.
func TestDeployDockerfileBuildsAStaticBinaryForDistrolessNonroot(t *testing.T) {
	stages := dockerStages(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a final stage", len(stages))
	}
	build := strings.Join(stages[0], "\n")
	for _, want := range []string{"FROM golang:1.26 ", "CGO_ENABLED=0 go build", "-trimpath", `-ldflags "-s -w"`, "./cmd/sluice"} {
		if !strings.Contains(build, want) {
			t.Errorf("the builder stage does not say %q:\n%s", want, build)
		}
	}
	final := stages[len(stages)-1]
	if final[0] != "FROM gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage is %q, want distroless static nonroot", final[0])
	}
	for _, want := range []string{"USER nonroot", "EXPOSE 8080"} {
		found := false
		for _, in := range final {
			found = found || in == want
		}
		if !found {
			t.Errorf("the final stage has no %q: %q", want, final)
		}
	}
	for _, in := range final {
		if strings.HasPrefix(in, "RUN ") || strings.HasPrefix(in, "HEALTHCHECK ") {
			// distroless has no shell to run either.
			t.Errorf("the final stage runs a command, %q: distroless has no shell", in)
		}
	}
}
