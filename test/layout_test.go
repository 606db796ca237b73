package test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayout holds the package graph the README's Layout section draws: imports
// point down, packages at one level never import each other, and the leaves
// stay leaves.
func TestLayout(t *testing.T) {
	const mod = "github.com/tributary-dev/tributary/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) {
				imports[pkg] = append(imports[pkg], strings.TrimPrefix(imp, mod))
			}
		}
	}
	// forbidden lists, per package, the packages of ours it must not import.
	forbidden := map[string][]string{
		"config":               {"*"},
		"policy":               {"*"},
		"internal/yamlerr":     {"*"},
		"internal/nodecert":    {"*"},
		"internal/protoschema": {"*"},
		"internal/auth":        {"*"},
		"registry":             {"policy", "replicator", "pubsubbridge", "internal/governance", "internal/daemon"},
		"internal/governance":  {"replicator", "replicator/coord", "pubsubbridge", "internal/daemon"},
		"replicator":           {"pubsubbridge", "replicator/coord", "internal/daemon"},
		"replicator/coord":     {"pubsubbridge", "replicator", "internal/daemon", "internal/governance"},
		"pubsubbridge":         {"replicator", "replicator/coord", "internal/daemon"},
		"internal/daemon":      {"cmd/tributary"},
	}
	// Leaves may import these stdlib-only helpers, which import nothing of ours.
	allowedLeafImports := map[string]bool{"internal/yamlerr": true, "internal/nodecert": true, "internal/protoschema": true}
	for pkg, bad := range forbidden {
		for _, imp := range imports[pkg] {
			for _, b := range bad {
				if (b == "*" && !allowedLeafImports[imp]) || imp == b {
					t.Errorf("%s imports %s: the layout forbids it", pkg, imp)
				}
			}
		}
	}
	for pkg, imps := range imports {
		for _, imp := range imps {
			if imp == "internal/daemon" && pkg != "cmd/tributary" && pkg != "test" {
				t.Errorf("%s imports internal/daemon: only cmd/tributary and test assemble nodes", pkg)
			}
		}
	}
}
