package replicator

import "github.com/tributary-dev/tributary/internal/governance"

// asReject finds the record-level refusal in a transformer's error.
func asReject(err error) (*governance.RejectError, bool) { return governance.AsReject(err) }
