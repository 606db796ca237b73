package test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/tlstest"
)

const (
	systemdUnitPath   = "../deploy/systemd/tributary.service"
	systemdConfigPath = "../deploy/systemd/config.example.yaml"
)

// systemdUnit is a unit file: section → key → values in order (a key may
// repeat, as LoadCredential= and SystemCallFilter= do).
type systemdUnit map[string]map[string][]string

func parseSystemdUnit(t *testing.T, path string) systemdUnit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := systemdUnit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: want key=value inside a section (no continuation lines), got %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the last value of a key ("" if unset): the one systemd uses for
// single-valued settings.
func (u systemdUnit) one(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestSystemdUnit checks deploy/systemd/tributary.service: the hardening
// settings, that ExecStart and ExecStartPre use real commands and flags of the
// binary on the config of ConfigurationDirectory, that every key file the
// example config reads from $CREDENTIALS_DIRECTORY is loaded, and
// `systemd-analyze verify` (when installed) finds nothing to say; then runs
// `tributary config check` on the example config laid out as systemd would.
func TestSystemdUnit(t *testing.T) {
	u := parseSystemdUnit(t, systemdUnitPath)
	svc := "Service"
	if u.one(svc, "DynamicUser") != "yes" && u.one(svc, "User") == "" {
		t.Error("want DynamicUser=yes or a dedicated User=")
	}
	for key, want := range map[string]string{
		"StateDirectory": "tributary", "ConfigurationDirectory": "tributary",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
		"CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes", "Restart": "on-failure",
	} {
		if got, set := u[svc][key]; !set || u.one(svc, key) != want {
			t.Errorf("%s=%q (set %v), want %q", key, got, set, want)
		}
	}
	families := strings.Fields(u.one(svc, "RestrictAddressFamilies"))
	for _, f := range []string{"AF_INET", "AF_INET6", "AF_UNIX"} {
		if !slices.Contains(families, f) {
			t.Errorf("RestrictAddressFamilies=%v lacks %s", families, f)
		}
	}
	if !slices.Contains(u[svc]["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter=%v: want @system-service", u[svc]["SystemCallFilter"])
	}
	if n, err := strconv.Atoi(u.one(svc, "LimitNOFILE")); err != nil || n < 65536 {
		t.Errorf("LimitNOFILE=%q: want at least 65536", u.one(svc, "LimitNOFILE"))
	}
	if len(u[svc]["EnvironmentFile"]) == 0 {
		t.Error("no EnvironmentFile= for the secrets of ${VAR}s")
	}
	// The node drains within 10 s of SIGTERM (README, "Running a node").
	if d, err := time.ParseDuration(u.one(svc, "TimeoutStopSec")); err != nil || d < 15*time.Second {
		t.Errorf("TimeoutStopSec=%q: want a duration above the 10 s drain", u.one(svc, "TimeoutStopSec"))
	}

	start := strings.Fields(u.one(svc, "ExecStart"))
	pre := strings.Fields(u.one(svc, "ExecStartPre"))
	const binary = "/usr/local/bin/tributary"
	cfgPath := "/etc/" + u.one(svc, "ConfigurationDirectory") + "/config.yaml"
	if len(start) < 4 || start[0] != binary || start[2] != "--config" || start[3] != cfgPath {
		t.Errorf("ExecStart=%q: want %s run --config %s ...", start, binary, cfgPath)
	}
	if want := []string{binary, "config", "check", cfgPath}; !slices.Equal(pre, want) {
		t.Errorf("ExecStartPre=%q: want %q", pre, want)
	}

	cfgText, err := os.ReadFile(systemdConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := decodeConfigText(t, string(cfgText))
	if dd := digStr(cfg, "node", "data_dir"); dd != "/var/lib/"+u.one(svc, "StateDirectory") {
		t.Errorf("config.example.yaml node.data_dir %s: want the unit's StateDirectory /var/lib/%s", dd, u.one(svc, "StateDirectory"))
	}
	creds := map[string]string{}
	for _, lc := range u[svc]["LoadCredential"] {
		id, src, _ := strings.Cut(lc, ":")
		creds[id] = src
	}
	used := regexp.MustCompile(`\$\{CREDENTIALS_DIRECTORY\}/([A-Za-z0-9._-]+)`).FindAllStringSubmatch(string(cfgText), -1)
	if len(used) < 4 {
		t.Errorf("config.example.yaml reads %d files from ${CREDENTIALS_DIRECTORY}: want the TLS files, tokens and hash key", len(used))
	}
	for _, m := range used {
		if creds[m[1]] == "" {
			t.Errorf("config.example.yaml reads ${CREDENTIALS_DIRECTORY}/%s: no LoadCredential=%s:... in the unit", m[1], m[1])
		}
	}

	if testing.Short() {
		t.Skip("-short: builds the tributary binary for the flags, systemd-analyze and config check")
	}
	bin := stampedBinary(t)
	checkRunFlags(t, bin, "ExecStart", start[1:])

	if analyze, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: the unit is checked by this test's reading only")
	} else {
		// verify checks that the binary exists: point the unit at the test's.
		b, err := os.ReadFile(systemdUnitPath)
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(t.TempDir(), "tributary.service")
		if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), binary, bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		// The exposure score of the hardening (0 best, 10 worst), where this
		// systemd can score a unit file offline (systemd >= 252).
		out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
		if m := regexp.MustCompile(`Overall exposure level for tributary.service: ([0-9.]+)`).FindSubmatch(out); err == nil && m != nil {
			score, _ := strconv.ParseFloat(string(m[1]), 64)
			t.Logf("systemd-analyze security: exposure %.1f", score)
			if score > 2.5 {
				t.Errorf("systemd-analyze security: exposure %.1f, want at most 2.5 (OK)", score)
			}
		} else {
			t.Logf("systemd-analyze security --offline unavailable here: %v", err)
		}
	}

	// config check as the service would run it: key files as LoadCredential
	// leaves them (owned by the service user, mode 0400), the state and policy
	// folders, the ${VAR}s of the EnvironmentFile.
	root := t.TempDir()
	credDir := filepath.Join(root, "credentials")
	os.MkdirAll(credDir, 0o700)
	ca := tlstest.NewCA(t, "cluster")
	id, region := digStr(cfg, "node", "id"), digStr(cfg, "node", "region")
	cert := ca.Node(region, id)
	files := map[string]string{
		"ca.pem": cert.Files.CA, "node.pem": cert.Files.Cert, "node-key.pem": cert.Files.Key,
	}
	for name := range creds {
		var b []byte
		if src, ok := files[name]; ok {
			b, _ = os.ReadFile(src)
		} else if name == "tokens.yaml" {
			b = []byte("- {name: grafana, role: read, sha256: 9f86d081884c7d659a2feb15d0ef0b56a0a1a8fc9f3e4e8b31d3c0fbc2c2d6a8}\n")
		} else {
			b = []byte("0123456789abcdef0123456789abcdef")
		}
		if err := os.WriteFile(filepath.Join(credDir, name), b, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.NewReplacer(
		"/var/lib/tributary", filepath.Join(root, "state"),
		"/etc/tributary/policies", filepath.Join(root, "policies"),
	).Replace(string(cfgText))
	os.MkdirAll(filepath.Join(root, "policies"), 0o755)
	path := filepath.Join(root, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "config", "check", path)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+credDir)
	for _, v := range regexp.MustCompile(`\$\{([A-Z_]+_KAFKA_[A-Z]+)\}`).FindAllStringSubmatch(string(cfgText), -1) {
		cmd.Env = append(cmd.Env, v[1]+"=placeholder-"+strings.ToLower(v[1]))
	}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), ": ok (") {
		t.Errorf("tributary config check deploy/systemd/config.example.yaml: %v\n%s", err, out)
	}
}
