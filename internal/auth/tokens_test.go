package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sum(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is masked by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	content := "- {name: grafana, role: read, sha256: " + sum("tok-read") + "}\n" +
		"- name: oncall\n  role: operate\n  sha256: " + strings.ToUpper(sum("tok-operate")) + "\n" +
		"- {name: platform, role: admin, sha256: " + sum("tok-admin") + "}\n"
	toks, err := Load(writeFile(t, content, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 3 {
		t.Errorf("Len() = %d, want 3", toks.Len())
	}
	for secret, want := range map[string]Token{
		"tok-read": {"grafana", Read}, "tok-operate": {"oncall", Operate}, "tok-admin": {"platform", Admin},
	} {
		if got, ok := toks.Lookup(secret); !ok || got != want {
			t.Errorf("Lookup(%s) = %v, %v; want %v", secret, got, ok, want)
		}
	}
	for _, wrong := range []string{"", "tok-rea", "tok-read ", sum("tok-read")} {
		if got, ok := toks.Lookup(wrong); ok {
			t.Errorf("Lookup(%q) = %v, want no match", wrong, got)
		}
	}
}

func TestLoadRefusesFilesOthersCanRead(t *testing.T) {
	content := "- {name: grafana, role: read, sha256: " + sum("x") + "}\n"
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		path := writeFile(t, content, mode)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "group or others may access it") || !strings.Contains(err.Error(), path) {
			t.Errorf("Load of a file with mode %#o: err = %v, want a refusal naming the file", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if _, err := Load(writeFile(t, content, mode)); err != nil {
			t.Errorf("Load of a file with mode %#o: %v", mode, err)
		}
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of a directory succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	h1, h2 := sum("one"), sum("two")
	tests := []struct {
		name    string
		content string
		want    []string // every error, in order
	}{
		{"an empty file has no tokens", "", []string{"t.yaml:1:1: no tokens: want a list of {name, role, sha256}"}},
		{"the file is a list", "name: x\n", []string{"t.yaml:1:1: want a list of {name, role, sha256}, got a mapping"}},
		{"entries are mappings", "- grafana\n", []string{"t.yaml:1:3: [0]: want a mapping {name, role, sha256}, got a scalar"}},
		{"unknown keys are errors, with a suggestion",
			"- {name: a, role: read, sha256: " + h1 + ", rol: admin}\n",
			[]string{`t.yaml:1:99: [0].rol: unknown key (did you mean "role"?)`}},
		{"every field is required", "- {name: a}\n", []string{"t.yaml:1:3: [0].role: required", "t.yaml:1:3: [0].sha256: required"}},
		{"roles are read, operate or admin",
			"- {name: a, role: root, sha256: " + h1 + "}\n",
			[]string{`t.yaml:1:19: [0].role: "root" is not one of read, operate, admin`}},
		{"a hash is 64 hex digits, and the error does not repeat it",
			"- {name: a, role: read, sha256: " + h1[:40] + "}\n",
			[]string{"t.yaml:1:33: [0].sha256: want the 64 hex digits of the token's SHA-256 (sha256sum of the token)"}},
		{"names are unique",
			"- {name: a, role: read, sha256: " + h1 + "}\n- {name: a, role: admin, sha256: " + h2 + "}\n",
			[]string{`t.yaml:2:10: [1].name: duplicate name "a" (also [0].name)`}},
		{"hashes are unique, and the error does not print them",
			"- {name: a, role: read, sha256: " + h1 + "}\n- {name: b, role: admin, sha256: " + strings.ToUpper(h1) + "}\n",
			[]string{"t.yaml:2:34: [1].sha256: duplicate sha256 (also [0].sha256): two names for one token"}},
		{"a duplicate key is an error", "- {name: a, name: b, role: read, sha256: " + h1 + "}\n",
			[]string{"t.yaml:1:13: [0].name: duplicate key (first at line 1)"}},
		{"one document only", "- {name: a, role: read, sha256: " + h1 + "}\n---\n- {}\n",
			[]string{"t.yaml:2:1: a tokens file holds one YAML document"}},
		{"a syntax error names its line", "- {name: a\n- b\n", []string{"t.yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.content))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d", err, len(tt.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			for _, h := range []string{h1, h2, h1[:40], strings.ToUpper(h1)} {
				if strings.Contains(err.Error(), h) {
					t.Errorf("the error shows a hash: %v", err)
				}
			}
		})
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := ReadTokenFile(write("ok", "  s3cret-token\n", 0o600)); err != nil || tok != "s3cret-token" {
		t.Errorf("ReadTokenFile = %q, %v", tok, err)
	}
	for name, tt := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"open":  {"s3cret-token\n", 0o644, "group or others may access it"},
		"empty": {"\n", 0o600, "empty"},
		"two":   {"s3cret-token other\n", 0o600, "want one token"},
	} {
		_, err := ReadTokenFile(write(name, tt.content, tt.mode))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the token: %v", name, err)
		}
	}
}
