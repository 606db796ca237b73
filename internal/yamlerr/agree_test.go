package yamlerr_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/yamlerr"
	"github.com/tributary-dev/tributary/policy"
)

// TestConfigAndPolicyAgree reads each file of testdata as a config file and as
// a policy file, and checks that both report its mistake identically: same
// line, column, key path and message. (This test imports config and policy,
// which import this package; the package itself imports neither.)
func TestConfigAndPolicyAgree(t *testing.T) {
	tests := []struct {
		name string
		file string
		want yamlerr.Error
	}{
		{"a flow list closed with } is a syntax error on its own line", "unclosed-flow-list.yaml",
			yamlerr.Error{Line: 5, Msg: "syntax error: did not find expected ',' or ']'"}},
		{"a tab in the indentation is a syntax error on the tab's line", "tab-indent.yaml",
			yamlerr.Error{Line: 5, Msg: "syntax error: found a tab character that violates indentation"}},
		{"an unknown key is reported at the key", "unknown-key.yaml",
			yamlerr.Error{Line: 4, Col: 3, Path: "colour", Msg: "unknown key"}},
		{"a duplicate key is reported at its second use", "duplicate-key.yaml",
			yamlerr.Error{Line: 5, Col: 1, Path: "version", Msg: "duplicate key (first at line 3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.File = path
			_, cerr := config.Parse(path, data)
			_, perr := policy.Parse(path, data)
			c, p := find(t, "config", cerr, want), find(t, "policy", perr, want)
			if c == nil || p == nil {
				return
			}
			if *c != want || *p != want {
				t.Errorf("for the same mistake\nconfig says: %s\npolicy says: %s\n want both: %s", c, p, &want)
			}
		})
	}
}

// find returns the error among those err holds that has want's key path and
// message, so that the test compares where the two packages put it.
func find(t *testing.T, pkg string, err error, want yamlerr.Error) *yamlerr.Error {
	t.Helper()
	var list *yamlerr.ErrorList
	if !errors.As(err, &list) {
		t.Errorf("%s: error %v is not a *yamlerr.ErrorList", pkg, err)
		return nil
	}
	for _, e := range list.Errors {
		if e.Path == want.Path && e.Msg == want.Msg {
			return e
		}
	}
	t.Errorf("%s: no error %q at %q among:\n%v", pkg, want.Msg, want.Path, err)
	return nil
}
