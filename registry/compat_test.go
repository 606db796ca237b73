package registry

import (
	"testing"
)

// checkCompat reports why candidate cannot follow previous (oldest first,
// versions 1, 2, ...) under level, in Confluent's verbose message format; nil
// means compatible. The schemas may not use references. It is the comparison
// the embedded server makes on registration (compatMessages), without a server.
func checkCompat(t *testing.T, level Level, typ SchemaType, candidate string, previous ...string) []string {
	t.Helper()
	cand, err := parseSchema(typ, candidate, nil)
	if err != nil {
		t.Fatalf("candidate: %v", err)
	}
	prev := make([]versioned, 0, len(previous))
	for i, s := range previous {
		p, err := parseSchema(typ, s, nil)
		if err != nil {
			t.Fatalf("previous[%d]: %v", i, err)
		}
		prev = append(prev, versioned{version: i + 1, p: p})
	}
	return compatMessages(level, cand, prev)
}
