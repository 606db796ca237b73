package registry

import (
	"strings"
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

// compatPair is one schema change of a compatibility table. backward: the new
// schema reads (accepts) all data written with (valid under) the old one;
// forward: the old schema reads data written with the new one.
type compatPair struct {
	name     string
	old, new string
	backward bool
	forward  bool
	// wantInMessage is a substring of the messages at every level the change
	// fails. wantInForward replaces it at the forward-only levels when the
	// change breaks both directions and the forward message is another one.
	wantInMessage string
	wantInForward string
}

// testCompatPairs checks each pair at every level: compatible exactly when
// the level's directions hold, and otherwise with messages that mention the
// expected substring and end with the level.
func testCompatPairs(t *testing.T, typ SchemaType, pairs []compatPair) {
	for _, tt := range pairs {
		for _, level := range Levels {
			want, wantIn := true, tt.wantInMessage
			switch level {
			case Backward, BackwardTransitive:
				want = tt.backward
			case Forward, ForwardTransitive:
				want = tt.forward
				if tt.wantInForward != "" {
					wantIn = tt.wantInForward
				}
			case Full, FullTransitive:
				want = tt.backward && tt.forward
			}
			t.Run(tt.name+"/"+string(level), func(t *testing.T) {
				msgs := checkCompat(t, level, typ, tt.new, tt.old)
				if got := len(msgs) == 0; got != want {
					t.Fatalf("compatible = %v, want %v; messages: %v", got, want, msgs)
				}
				if want {
					return
				}
				if !strings.Contains(strings.Join(msgs, " "), wantIn) {
					t.Fatalf("messages %v do not mention %q", msgs, wantIn)
				}
				if !strings.Contains(msgs[len(msgs)-1], string(level)) {
					t.Fatalf("messages %v do not end with the level", msgs)
				}
			})
		}
	}
}
